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
    var d = w.document;
    // Resolve a relative tokenUrl against this script's own URL, not the host page: the
    // script is usually served by the token service, from another origin than the page.
    var cs = d && (d.currentScript || d.querySelector('script[src*="provider.js"]'));
    var base = (cs && cs.src) || w.location.href;
    // The widget allows 10 s per attempt: give up at 8 s, whatever is still pending.
    var ABORT_MS = 8000, EARLY_S = 60, MAX_BODY = 16384;
    var opts = {}, cached = null, flight = null, gen = 0;

    var abs = function (u, b) {
      try { return new URL(u, b).href; } catch (e) { return u; }
    };
    var emit = function (name, detail) {
      try { w.dispatchEvent(new CustomEvent(name, { detail: detail })); } catch (e) { /* old browser */ }
    };
    // base64url segment -> JSON (atob tolerates the missing "=" padding).
    var seg = function (s) { return JSON.parse(atob(s.replace(/-/g, "+").replace(/_/g, "/"))); };
    // The decoded payload if `t` looks like a JWT that has not expired, else null. The widget
    // and Omnichannel do the real checks; this only keeps obvious junk away from them.
    var payloadOf = function (t) {
      try {
        var p = typeof t == "string" && t.split(".");
        if (!p || p.length != 3 || !p.every(function (s) { return /^[\w-]+$/.test(s); })) return null;
        var c = seg(p[1]);
        return c && typeof c.exp == "number" && c.exp > Date.now() / 1000 ? c : null;
      } catch (e) { return null; }
    };
    // The token from a response body: {"token": "..."} (what we ask for) or a raw JWT
    // (what Microsoft's sample token endpoint returns).
    var tokenOf = function (text) {
      text = String(text).trim();
      if (text.length > MAX_BODY) return null;
      if (text.charAt(0) != "{") return text;
      var body = JSON.parse(text);
      return body && body.token;
    };

    // One network attempt. Always settles (never rejects) within ABORT_MS, even when the
    // identity getter or fetch hangs, or AbortController is missing.
    var attempt = function (mid) {
      var myGen = gen;
      return new Promise(function (resolve) {
        var done = false, ac = null, status = null, timer;
        var finish = function (token, reason, claims) {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (token) {
            // Reuse until shortly before exp, unless configure()/reset() ran meanwhile. Bound
            // the lifetime by exp - iat as well, so a slow local clock cannot stretch it.
            var now = Date.now() / 1000;
            var life = typeof claims.iat == "number" ? claims.exp - claims.iat : claims.exp - now;
            var until = now + Math.min(claims.exp - now, life) - Math.min(EARLY_S, life / 4);
            if (myGen == gen && until > now) cached = { token: token, until: until };
            emit("chat-auth:token", { expiresAt: claims.exp });
          } else {
            try { console.warn("[chat-auth] no chat token for the widget: " + reason + (status ? " (HTTP " + status + ")" : "")); } catch (e) { /* no console */ }
            emit("chat-auth:error", { reason: reason, status: status, midAuth: !!mid });
          }
          resolve(token || null);
        };
        var fail = function (reason) { return function () { throw { reason: reason }; }; };
        try {
          timer = setTimeout(function () {
            try { if (ac) ac.abort(); } catch (e) { /* ignore */ }
            finish(null, "timeout");
          }, ABORT_MS);
          try { ac = new AbortController(); } catch (e) { /* older browser: the timer covers it */ }

          // Settings as they are now: a configure() during the attempt applies to the next one.
          // A page's own tokenUrl is relative to the page, the deployed one to this script.
          var getter = opts.identityToken;
          var url = opts.tokenUrl ? abs(opts.tokenUrl, w.location.href) : abs(cfg.tokenUrl || "/token", base);
          var mode = cfg.identityMode || "auto";
          var bearer = mode == "bearer" || (mode != "cookie" && typeof getter == "function");
          new Promise(function (r) { r(bearer ? getter() : null); }) // a throwing getter rejects
            .then(function (id) {
              if (bearer && (!id || typeof id != "string")) throw { reason: "no_identity" };
              var init = { method: "GET", headers: { Accept: "application/json" }, cache: "no-store" };
              if (bearer) init.headers.Authorization = "Bearer " + id;
              else init.credentials = "include";
              if (ac) init.signal = ac.signal;
              return fetch(url, init).then(function (res) {
                status = res.status;
                if (status == 401) throw { reason: "unauthenticated" };
                if (status != 200) throw { reason: "http_" + status };
                return res.text().then(null, fail("network"));
              }, fail("network"));
            }, fail("no_identity"))
            .then(function (text) {
              var t, claims;
              try { t = tokenOf(text); claims = payloadOf(t); } catch (e) { /* not JSON */ }
              if (!claims) throw { reason: "invalid_response" };
              finish(t, null, claims);
            })
            .then(null, function (err) { finish(null, (err && err.reason) || "network"); });
        } catch (e) {
          finish(null, "internal");
        }
      });
    };

    // Cached token if still fresh, else join the in-flight request, else start one.
    var getToken = function (mid) {
      try {
        if (cached && Date.now() / 1000 < cached.until) return Promise.resolve(cached.token);
        cached = null;
        if (!flight) {
          var f = flight = attempt(mid);
          f.then(function () { if (flight === f) flight = null; });
        }
        return flight;
      } catch (e) {
        return Promise.resolve(null);
      }
    };

    // Shape the widget expects: provider(callback) or provider({isMidAuthEnabled}, callback);
    // callback(jwt | null) exactly once. With mid-conversation sign-in, null means "continue
    // unauthenticated".
    var provider = function (a, b) {
      var cb = typeof a == "function" ? a : b;
      var p = getToken(!!(a && typeof a == "object" && a.isMidAuthEnabled));
      p.then(function (t) {
        if (typeof cb == "function") {
          try { cb(t); } catch (e) { /* a throwing widget callback must not break our state */ }
        }
      });
      return p; // harmless extra: callers that await the return value get the token as well
    };

    // Define the admin-configured client function (dotted path) without clobbering objects.
    var defineClientFunction = function (path) {
      try {
        var parts = String(path || "").split("."), o = w, i, k;
        if (!parts.every(function (s) { return /^[A-Za-z_$][\w$]*$/.test(s) && s != "__proto__" && s != "prototype"; })) return;
        for (i = 0; i < parts.length - 1; i++) {
          k = parts[i];
          if (o[k] == null) o[k] = {};
          if (typeof o[k] != "object" && typeof o[k] != "function") return; // a primitive is in the way
          o = o[k];
        }
        o[parts[i]] = provider;
      } catch (e) {
        try { console.warn("[chat-auth] could not define " + path + ": " + (e && e.message)); } catch (e2) { /* ignore */ }
      }
    };

    // LCW v1: register with the script SDK (again on every lcw:ready: it is idempotent, and a
    // re-initialised widget must not be left without a provider).
    var wire = function () {
      try {
        var M = w.Microsoft, sdk = M && M.Omnichannel && M.Omnichannel.LiveChatWidget && M.Omnichannel.LiveChatWidget.SDK;
        if (sdk && typeof sdk.setAuthTokenProvider == "function") sdk.setAuthTokenProvider(provider);
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
      getToken: function () { return getToken(false); },
      // The admin-configured client function this script defined, e.g. "auth.getAuthenticationToken".
      clientFunction: cfg.clientFunction,
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
