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
    // The identity of cookie mode: the page's cookies, which this script cannot read.
    var COOKIES = {};
    // cached = {id, gen, token, until}, flight = {id, gen, p}: tied to the identity they were
    // got for (`id`: the identity token, or COOKIES) and to the settings (`gen`, bumped by
    // configure() and reset()), and handed only to a call whose getter answered that identity.
    // The identity token is kept as a string, not a SHA-256 digest: crypto.subtle is async and
    // missing on http pages, and a digest hides nothing from the page's own code, the only code
    // that can read this closure (its identity library holds the same string). It goes with the
    // token: at the next call for someone else or no one, at configure() and at reset().
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
    var fail = function (reason) { return function () { throw { reason: reason }; }; };

    // One request to the token endpoint as `id`. Resolves {token, claims} or rejects
    // {reason, status}, within ABORT_MS (the fetch is aborted then, if AbortController exists).
    var request = function (id, s) {
      var ac = null, status = null, timer;
      try { ac = new AbortController(); } catch (e) { /* older browser: the timer still answers */ }
      var init = { method: "GET", headers: { Accept: "application/json" }, cache: "no-store" };
      if (id === COOKIES) init.credentials = "include";
      else init.headers.Authorization = "Bearer " + id;
      if (ac) init.signal = ac.signal;
      var late = new Promise(function (r, reject) {
        timer = setTimeout(function () {
          try { if (ac) ac.abort(); } catch (e) { /* ignore */ }
          reject({ reason: "timeout" });
        }, ABORT_MS);
      });
      // Through a promise: a page's fetch that throws (missing, or a wrapper with a bug) must
      // fail this request like a network error, not leave a flight with no promise for every
      // later call to join.
      var got = new Promise(function (r) { r(fetch(s.url, init)); }).then(function (res) {
        status = res.status;
        if (status == 401) throw { reason: "unauthenticated" };
        if (status != 200) throw { reason: "http_" + status };
        return res.text().then(null, fail("network"));
      }, fail("network")).then(function (text) {
        var t, claims;
        try { t = tokenOf(text); claims = payloadOf(t); } catch (e) { /* not JSON */ }
        if (!claims) throw { reason: "invalid_response" };
        return { token: t, claims: claims };
      });
      return Promise.race([got, late]).then(function (r) {
        clearTimeout(timer);
        return r;
      }, function (err) {
        clearTimeout(timer);
        throw { reason: (err && err.reason) || "network", status: status };
      });
    };

    // The token for identity `id` under settings `s`: the cached one if it is that identity's
    // and still fresh, else the request in flight for it, else a new request. A request that
    // another identity's (or configure()/reset()) has displaced still answers the calls that
    // joined it, but is not cached. Cookie mode caches nothing: this script cannot see the
    // cookie change at sign-in or sign-out, the server can.
    var tokenFor = function (id, s) {
      var mine = function (e) { return e && e.id === id && e.gen === s.gen; };
      if (mine(cached) && Date.now() / 1000 < cached.until) return Promise.resolve(cached.token);
      cached = null;
      if (mine(flight)) return flight.p;
      var f = flight = { id: id, gen: s.gen };
      f.p = request(id, s).then(function (r) {
        var c = r.claims;
        if (flight === f) {
          flight = null;
          // Reuse until shortly before exp. Bound the lifetime by exp - iat as well, so a slow
          // local clock cannot stretch it.
          var now = Date.now() / 1000;
          var life = typeof c.iat == "number" ? c.exp - c.iat : c.exp - now;
          var until = now + Math.min(c.exp - now, life) - Math.min(EARLY_S, life / 4);
          if (id !== COOKIES && until > now) cached = { id: id, gen: s.gen, token: r.token, until: until };
        }
        emit("chat-auth:token", { expiresAt: c.exp });
        return r.token;
      }, function (err) {
        if (flight === f) flight = null;
        throw err;
      });
      return f.p;
    };

    // One call: ask the getter who the user is now, then get that user's token. Always
    // settles within ABORT_MS of the call, even when the getter or the fetch hangs; every null
    // comes with one console line and one chat-auth:error saying why.
    var getToken = function (mid) {
      return new Promise(function (resolve) {
        var done = false, timer;
        var finish = function (token, err) {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (!token) {
            err = err || {};
            var reason = err.reason || "network", status = err.status || null;
            try { console.warn("[chat-auth] no chat token for the widget: " + reason + (status ? " (HTTP " + status + ")" : "")); } catch (e) { /* no console */ }
            emit("chat-auth:error", { reason: reason, status: status, midAuth: mid });
          }
          resolve(token || null);
        };
        try {
          timer = setTimeout(function () { finish(null, { reason: "timeout" }); }, ABORT_MS);
          // Settings as they are now: a configure() during the call applies to the next one.
          // A page's own tokenUrl is relative to the page, the deployed one to this script.
          var getter = opts.identityToken, mode = cfg.identityMode || "auto";
          var s = {
            gen: gen,
            url: opts.tokenUrl ? abs(opts.tokenUrl, w.location.href) : abs(cfg.tokenUrl || "/token", base)
          };
          var bearer = mode == "bearer" || (mode != "cookie" && typeof getter == "function");
          new Promise(function (r) { r(bearer ? getter() : COOKIES); }) // a throwing getter rejects
            .then(function (id) {
              if (id === COOKIES || (id && typeof id == "string")) return tokenFor(id, s);
              // Signed out: whoever's token is held, it is not for this call or any later one.
              cached = null; flight = null;
              throw { reason: "no_identity" };
            }, fail("no_identity"))
            .then(function (t) { finish(t); }, function (err) { finish(null, err); });
        } catch (e) {
          finish(null, { reason: "internal" });
        }
      });
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
      // configure({identityToken: () => string | null | Promise<string | null>, tokenUrl}): the
      // getter is asked on every call (null: signed out). New settings drop what is held.
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
      // reset(): forget the cached token, the in-flight request and configure() options. Call it
      // at sign-out in cookie mode (with a getter, a null answer does the same).
      reset: function () { opts = {}; cached = null; flight = null; gen++; }
    };

    defineClientFunction(cfg.clientFunction);
    w.addEventListener("lcw:ready", wire);
    wire();
  } catch (e) {
    try { console.warn("[chat-auth] provider failed to load: " + (e && e.message)); } catch (e2) { /* ignore */ }
  }
})(window);
