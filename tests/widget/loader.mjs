// The widget's loader step, which is closed source: written from the documented contract only.
// It finds the admin-configured client function by its dotted name on the page, passes it a
// callback, and gives up after 10 s. It resolves with whatever the callback got (null included),
// or null when the function is missing, throws, or never calls back. Every call is recorded in
// `calls` so a test can see when the widget asked for a token.
export const LOADER_TIMEOUT_MS = 10000;

export function makeGetAuthToken(calls) {
  return function getAuthToken(name) {
    const started = Date.now();
    const record = { name, at: started, outcome: "pending", ms: null, token: null };
    calls.push(record);
    return new Promise((resolve) => {
      let settled = false;
      const settle = (outcome, token) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        Object.assign(record, { outcome, token, ms: Date.now() - started });
        resolve(token);
      };
      const timer = setTimeout(() => settle("timeout", null), LOADER_TIMEOUT_MS);
      const fn = String(name).split(".").reduce((o, k) => (o == null ? undefined : o[k]), window);
      if (typeof fn !== "function") return settle("not_found", null);
      try {
        fn((token) => settle(token ? "token" : "null", token == null ? null : token));
      } catch (e) {
        settle("threw", null);
      }
    });
  };
}
