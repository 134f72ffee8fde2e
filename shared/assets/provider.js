/*! chat-auth provider: hands Omnichannel's live chat widget a signed chat token.
 * Plain ES2017, no dependencies. It must never throw into the host page or the widget:
 * every failure ends as callback(null) plus a "chat-auth:error" window event. */
(function (w) {
  "use strict";
  try {
    // The server replaces the placeholder below with a JSON object:
    // {"tokenUrl": "/token", "clientFunction": "auth.getAuthenticationToken", "identityMode": "auto"}
    var CONFIG = __CHAT_AUTH_CONFIG__;
    var cfg = CONFIG || {};
    // Resolve a relative tokenUrl against this script's own URL, not the host page: the
    // script is usually served by the token service, from another origin than the page.
    var cs = w.document && w.document.currentScript;
    var base = (cs && cs.src) || w.location.href;
    var ABORT_MS = 8000, GUARD_MS = 9500, EARLY_S = 60; // the widget allows 10 s per attempt
    var opts = {}, cached = null, flight = null, gen = 0, wiredSdk = null;

    var abs = function (u) {
      try { return new URL(u, base).href; } catch (e) { return u; }
    };
    var emit = function (name, detail) {
      try { w.dispatchEvent(new CustomEvent(name, { detail: detail })); } catch (e) { /* old browser */ }
    };
    // base64url segment -> JSON (atob tolerates the missing "=" padding).
    var seg = function (s) { return JSON.parse(atob(s.replace(/-/g, "+").replace(/_/g, "/"))); };
    // Returns the decoded payload if `t` looks like a JWT that has not expired, else null.
    // Trust the token's own exp rather than assuming a lifetime.
    var payloadOf = function (t) {
      try {
        var p = typeof t == "string" && t.split(".");
        if (!p || p.length != 3 || !p.every(function (s) { return /^[\w-]+$/.test(s); })) return null;
        var c = seg(p[1]);
        return c && typeof c.exp == "number" && c.exp > Date.now() / 1000 ? c : null;
      } catch (e) { return null; }
    };

    // One network attempt. Always settles (never rejects) within GUARD_MS, even when fetch
    // hangs and AbortController is missing: the guard timer answers first in that case.
    var attempt = function () {
      var myGen = gen;
      return new Promise(function (resolve) {
        var done = false, timedOut = false, ac = null, timer, guard;
        var finish = function (token, reason, status, claims, kid) {
          if (done) return;
          done = true;
          clearTimeout(timer); clearTimeout(guard);
          if (token) {
            // Cache until shortly before exp, unless configure()/reset() ran meanwhile.
            if (myGen == gen) cached = { token: token, until: claims.exp - EARLY_S };
            emit("chat-auth:token", { expiresAt: claims.exp, kid: kid });
          } else {
            try { console.warn("[chat-auth] could not get a chat token: " + reason); } catch (e) { /* no console */ }
            emit("chat-auth:error", { reason: reason, status: status });
          }
          resolve(token || null);
        };
        guard = setTimeout(function () { finish(null, "timeout", null); }, GUARD_MS);
        try { ac = new AbortController(); } catch (e) { /* older browser: the guard covers it */ }
        timer = setTimeout(function () { timedOut = true; if (ac) ac.abort(); }, ABORT_MS);

        var getter = opts.identityToken;
        var mode = cfg.identityMode || "auto";
        var bearer = mode == "bearer" || (mode != "cookie" && typeof getter == "function");
        var idp = bearer
          ? new Promise(function (r) { r(getter()); }) // catches a getter that throws synchronously
          : Promise.resolve(null);
        var status = null;
        idp.then(function (id) {
          if (bearer && (!id || typeof id != "string")) throw { reason: "no_identity" };
          var init = { method: "GET", headers: { Accept: "application/json" } };
          if (bearer) init.headers.Authorization = "Bearer " + id;
          else init.credentials = "include";
          if (ac) init.signal = ac.signal;
          return fetch(abs(opts.tokenUrl || cfg.tokenUrl || "/token"), init).then(function (res) {
            status = res.status;
            if (status == 401) throw { reason: "unauthenticated" };
            if (status != 200) throw { reason: "http_" + status };
            return res.json().then(null, function () { throw { reason: "invalid_response" }; });
          }, function () {
            throw { reason: timedOut ? "timeout" : "network" };
          });
        }, function () {
          throw { reason: "no_identity" };
        }).then(function (body) {
          var t = body && body.token, claims = payloadOf(t);
          if (!claims) throw { reason: "invalid_response" };
          var kid = body.kid;
          try { kid = kid || seg(t.split(".")[0]).kid; } catch (e) { /* kid is informational only */ }
          finish(t, null, status, claims, kid || null);
        }).then(null, function (err) {
          // Body read may be aborted too: report that as a timeout, not a bad response.
          var reason = timedOut ? "timeout" : (err && err.reason) || "network";
          finish(null, reason, status);
        });
      });
    };

    // Cached token if still fresh, else join the in-flight request, else start one.
    var getToken = function () {
      try {
        if (cached && Date.now() / 1000 < cached.until) return Promise.resolve(cached.token);
        cached = null;
        if (!flight) {
          var f = flight = attempt();
          f.then(function () { if (flight === f) flight = null; });
        }
        return flight;
      } catch (e) {
        return Promise.resolve(null);
      }
    };

    // Shape the widget expects: provider(callback), callback(jwt | null), called exactly once.
    var provider = function (a, b) {
      var cb = typeof a == "function" ? a : b; // fn(callback) or fn({isMidAuthEnabled}, callback)
      var p = getToken();
      p.then(function (t) {
        if (typeof cb == "function") {
          try { cb(t); } catch (e) { /* a throwing widget callback must not break our state */ }
        }
      });
      return p; // harmless extra: callers that await the return value get the token as well
    };

    // Define the admin-configured client function (dotted path) without clobbering objects.
    var defineClientFunction = function (path) {
      var parts = String(path || "").split("."), o = w, i, k;
      if (!parts.every(function (s) { return /^[A-Za-z_$][\w$]*$/.test(s) && s != "__proto__"; })) return;
      for (i = 0; i < parts.length - 1; i++) {
        k = parts[i];
        if (o[k] == null) o[k] = {};
        if (typeof o[k] != "object" && typeof o[k] != "function") return; // a primitive is in the way
        o = o[k];
      }
      o[parts[i]] = provider;
    };

    // LCW v1: register with the script SDK once per SDK object.
    var wire = function () {
      try {
        var M = w.Microsoft, sdk = M && M.Omnichannel && M.Omnichannel.LiveChatWidget && M.Omnichannel.LiveChatWidget.SDK;
        if (sdk && sdk !== wiredSdk && typeof sdk.setAuthTokenProvider == "function") {
          sdk.setAuthTokenProvider(provider);
          wiredSdk = sdk;
        }
      } catch (e) { /* the widget may not be ready yet; lcw:ready will retry */ }
    };

    w.chatAuth = {
      // configure({identityToken: () => string | Promise<string>, tokenUrl}): a new identity
      // means the cached token (if any) belongs to someone else, so it is dropped.
      configure: function (o) {
        o = o || {};
        if ("identityToken" in o) opts.identityToken = o.identityToken;
        if ("tokenUrl" in o) opts.tokenUrl = o.tokenUrl;
        cached = null; flight = null; gen++;
      },
      getToken: getToken,
      provider: provider,
      // reset(): forget the cached token, the in-flight request and configure() options (sign-out).
      reset: function () { opts = {}; cached = null; flight = null; gen++; }
    };

    defineClientFunction(cfg.clientFunction);
    w.addEventListener("lcw:ready", wire);
    wire();
  } catch (e) {
    try { console.warn("[chat-auth] provider failed to load: " + (e && e.message)); } catch (e2) { /* ignore */ }
  }
})(window);
