// The Node.js peer of `cargo xtask bench` (xtask/src/local/peer.rs): Node's `http` and the jose
// package answer GET /token with the token `chat-auth serve` mints there (the same header and
// claims, a 2048-bit RSA key), one RS256 signature per request and no caller verification.
// PEER_PORT: the loopback port; PEER_MODULES: where scripts/bench.sh installed jose
// (target/peer), since an ES module finds packages only beside itself otherwise.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.PEER_MODULES}/`);
const jose = await import(require.resolve('jose'));
const { publicKey, privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048 });
const kid = await jose.calculateJwkThumbprint(await jose.exportJWK(publicKey));
const header = { typ: 'JWT', alg: 'RS256', kid };
const lwicontexts = JSON.stringify({ msdyn_cartvalue: '10000', msdyn_isvip: true, region: 'emea' });
const sub = '87b4d06c-7c6e-4e8e-9c3f-0b2f1f6f7a11';

http.createServer(async (req, res) => {
  if (req.method !== 'GET' || req.url !== '/token') {
    res.writeHead(404, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ error: { code: 'not_found', message: 'no such route' } }));
    return;
  }
  // As our server: backdated 30 s, 15 minutes' life, 128 random bits of jti in base64url.
  const now = Math.floor(Date.now() / 1000);
  const jti = randomBytes(16).toString('base64url');
  const claims = { sub, iss: 'chat-auth', iat: now - 30, nbf: now - 30, exp: now + 900 };
  const jwt = new jose.SignJWT({ ...claims, jti, lwicontexts }).setProtectedHeader(header);
  const token = await jwt.sign(privateKey);
  res.writeHead(200, { 'content-type': 'application/jwt', 'cache-control': 'no-store' });
  res.end(token);
}).listen(Number(process.env.PEER_PORT), '127.0.0.1');
