-- wrk script: POST /validate with {"token": $BENCH_TOKEN} on every request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"token":"' .. assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN is not set") .. '"}'
