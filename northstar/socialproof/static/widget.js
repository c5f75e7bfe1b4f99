/* Northstar social proof widget: popups in a Shadow DOM, events to /api/v1/collect. Never throws into the page. */
(function (w, d) {
  "use strict";
  /* A page whose CSP names a nonce gives it to this script; the widget's <style> elements carry it too. */
  var me = d.currentScript, NONCE = (me && me.nonce) || "";
  var STYLE = [
    ":host{all:initial!important}",
    ".wrap{position:fixed;z-index:2147483000;max-width:360px;margin:16px;font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif}",
    ".bottom-left{left:0;bottom:0}.bottom-right{right:0;bottom:0}.top-left{left:0;top:0}.top-right{right:0;top:0}",
    ".popup{display:flex;gap:8px;align-items:flex-start;padding:12px 14px;border-radius:10px;cursor:default;",
    "background:#fff;color:#1f2933;box-shadow:0 6px 24px rgba(0,0,0,.18);opacity:0;transform:translateY(8px);",
    "transition:opacity .25s ease,transform .25s ease}",
    ".popup.in{opacity:1;transform:none}.popup.link{cursor:pointer}",
    ".dark .popup{background:#1f2933;color:#f5f7fa}",
    "@media (prefers-color-scheme:dark){.auto .popup{background:#1f2933;color:#f5f7fa}}",
    ".text{flex:1;min-width:0}.close{all:unset;cursor:pointer;font-size:18px;line-height:1;opacity:.6;display:inline-flex;",
    "align-items:center;justify-content:center;min-width:24px;min-height:24px;margin:-4px -6px -4px 0}",
    ".close:hover,.close:focus-visible{opacity:1;outline:2px solid currentColor;border-radius:3px}",
    "@media (max-width:480px){.wrap{left:0;right:0;max-width:none;margin:8px}}",
    "@media (prefers-reduced-motion:reduce){.popup{transition:none;transform:none}}",
    ".wrap.preview{position:relative;z-index:auto}.preview .popup{opacity:1;transform:none;transition:none}"
  ].join("");
  /* <script data-preview src=…>: no visitor, no network; window.northstarPreview(container, feed) draws the first
     item of a feed document in the container, as a visitor would see it (the console's notification editor). */
  if (me && me.hasAttribute("data-preview")) { w.northstarPreview = guard(preview); return; }
  var ns = w.northstar;
  if (!ns || !ns.key || ns.started) return;
  ns.started = 1;
  var KEY = ns.key, API = ns.api, nav = w.navigator;
  var PREFIX = "ns:" + KEY + ":";
  var SEND_DELAY = 1000, BATCH = 50, FEED_TIMEOUT = 5000, OWN_DAYS = 7;

  function noop() {}
  function guard(fn) {
    return function () { try { return fn.apply(this, arguments); } catch (e) { return undefined; } };
  }
  function storage(kind) {
    try { var s = w[kind]; s.setItem(PREFIX + "t", "1"); s.removeItem(PREFIX + "t"); return s; } catch (e) { return null; }
  }
  var local = storage("localStorage"), session = storage("sessionStorage");
  function read(store, name, fallback) {
    try { var v = store && store.getItem(PREFIX + name); return v === null || v === undefined ? fallback : JSON.parse(v); }
    catch (e) { return fallback; }
  }
  function write(store, name, value) {
    try { if (store) store.setItem(PREFIX + name, JSON.stringify(value)); } catch (e) { /* full or blocked */ }
  }
  /* Text as the collector accepts it: a string, no NUL, trimmed, at most max characters ("" when absent). */
  function text(value, max) { return value == null ? "" : String(value).replace(/\0/g, "").trim().slice(0, max); }
  function here() { return String(w.location.href).slice(0, 2048); }
  function link(url) {
    if (url == null || url === "") return null; /* no link: new URL(null) would be the page's "/null" */
    try { var u = new URL(url, w.location.href); return /^https?:$/.test(u.protocol) ? u.href.slice(0, 2048) : null; }
    catch (e) { return null; }
  }
  function uuid() {
    var c = w.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b); else for (var i = 0; i < 16; i++) b[i] = Math.random() * 256;
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  /* Same 16-bit FNV-1a tag as the server's visitor_tag(): hides an identified visitor's own events. */
  function tagOf(userId) {
    var text = KEY + "|" + userId, bytes = w.TextEncoder ? new TextEncoder().encode(text) : null, v = 0x811c9dc5;
    var n = bytes ? bytes.length : text.length;
    for (var i = 0; i < n; i++) {
      v ^= bytes ? bytes[i] : text.charCodeAt(i) & 255;
      v = Math.imul(v, 0x01000193) >>> 0;
    }
    return ((v ^ (v >>> 16)) & 0xffff) >>> 0;
  }

  /* ---- visitor and privacy ---- */
  var optedOut = read(local, "optout", false);
  var quiet = nav.webdriver === true || nav.globalPrivacyControl === true; /* show, but record nothing */
  var firstSeen = read(local, "first", null), inSession = read(session, "on", false);
  var returning = !!firstSeen && !inSession;
  if (!firstSeen) write(local, "first", Date.now());
  write(session, "on", true);
  var userId = read(local, "uid", null), persistent = !!ns.pv; /* known before the feed: the first page_view counts */

  function visitor() {
    var v = {}, uid = text(userId, 200); /* what storage holds is checked too: a bad id would refuse every batch */
    if (uid) v.userId = uid;
    if (persistent) {
      var id = read(local, "vid", null);
      if (!/^[0-9a-f]{32}$/.test(id)) { id = uuid().replace(/-/g, ""); write(local, "vid", id); }
      v.localId = id;
    }
    return v;
  }

  /* ---- sending ---- */
  var outbox = [], timer = null;
  function send(type, extra) {
    if (optedOut || quiet) return null;
    var event = { id: uuid(), type: type, occurredAt: new Date().toISOString(), url: here() };
    for (var k in extra) if (Object.prototype.hasOwnProperty.call(extra, k) && extra[k] != null) event[k] = extra[k];
    outbox.push(event);
    if (outbox.length >= BATCH) flush(false);
    else if (!timer) timer = w.setTimeout(function () { flush(false); }, SEND_DELAY);
    return event.id;
  }
  var flush = guard(function (leaving) {
    if (timer) { w.clearTimeout(timer); timer = null; }
    while (outbox.length) {
      var body = JSON.stringify({ siteKey: KEY, sentAt: new Date().toISOString(), visitor: visitor(),
                                  events: outbox.splice(0, BATCH) });
      var url = API + "/api/v1/collect";
      if (leaving && nav.sendBeacon && nav.sendBeacon(url, new Blob([body], { type: "text/plain" }))) continue;
      if (w.fetch) w.fetch(url, { method: "POST", body: body, keepalive: true, credentials: "omit", mode: "cors",
                                  headers: { "Content-Type": "text/plain" } }).catch(noop);
    }
  });
  function leaving() { flush(true); }
  /* An opt-out or opt-in goes to the site's consent log (the privacy module), with the ids it was made under. */
  var consent = guard(function (action, who) {
    if (quiet) return;
    var body = JSON.stringify({ siteKey: KEY, action: action, visitor: who }), url = API + "/api/v1/privacy/consent";
    if (nav.sendBeacon && nav.sendBeacon(url, new Blob([body], { type: "text/plain" }))) return;
    if (w.fetch) w.fetch(url, { method: "POST", body: body, keepalive: true, credentials: "omit", mode: "cors",
                                headers: { "Content-Type": "text/plain" } }).catch(noop);
  });
  w.addEventListener("pagehide", guard(leaving));
  d.addEventListener("visibilitychange", guard(function () { if (d.visibilityState === "hidden") leaving(); }));

  /* Events this visitor sent themselves (purchases they tracked): never shown back to them. */
  function ownEvents() {
    var own = read(local, "own", {}), now = Date.now(), kept = {};
    for (var id in own) if (now - own[id] < OWN_DAYS * 864e5) kept[id] = own[id];
    return kept;
  }

  var CONVERSIONS = { purchase: 1, signup: 1, review: 1 };
  /* Details as the collector validates them: one bad value must not cost the whole batch (and its page view). */
  var TEXTS = { firstName: 100, city: 100, product: 200 }, CODES = { country: 2, currency: 3 }, RANGES = { amount: 1e12, rating: 5 };
  function details(given) {
    var out = {}, k, v;
    for (k in TEXTS) if ((v = text(given[k], TEXTS[k]))) out[k] = v;
    for (k in CODES) if ((v = text(given[k], 9).toUpperCase()).length === CODES[k] && /^[A-Z]+$/.test(v)) out[k] = v;
    for (k in RANGES) {
      v = given[k] == null || given[k] === "" ? NaN : Number(given[k]);
      if (v >= 0 && v <= RANGES[k]) out[k] = v;
    }
    if (given.productUrl != null && (v = link(text(given.productUrl, 2048)))) out.productUrl = v;
    return out;
  }
  /* Custom field values (track(name, {custom: {plan: "pro"}})): keys and types as the collector reads them; the
     values themselves are checked against the merchant's fields there, which rejects this one event if they do not fit. */
  function customValues(given) {
    var out = {}, n = 0, k, v;
    for (k in given) {
      if (!Object.prototype.hasOwnProperty.call(given, k) || !/^[a-z][a-z0-9_]{0,39}$/.test(k) || n >= 50) continue;
      v = given[k];
      if (typeof v === "string") v = text(v, 500);
      else if (typeof v !== "boolean" && !(typeof v === "number" && isFinite(v))) continue;
      out[k] = v; n++;
    }
    return n ? out : null;
  }
  var commands = {
    track: function (name, given) {
      var type = CONVERSIONS[name] ? name : "custom", extra = {};
      if (type === "custom" && !(extra.name = text(name, 100))) return;
      if (given && typeof given === "object") extra.details = details(given);
      if (given && given.custom && typeof given.custom === "object") extra.custom = customValues(given.custom);
      var id = send(type, extra);
      if (id) { var own = ownEvents(); own[id] = Date.now(); write(local, "own", own); }
    },
    identify: function (who) {
      var id = text(who && typeof who === "object" ? who.id : who, 200);
      if (!id) return;
      userId = id;
      if (!optedOut) write(local, "uid", userId); /* an opted-out visitor keeps no identifier */
    },
    stop: function () {
      consent("opt_out", visitor());
      optedOut = true; outbox = [];
      write(local, "optout", true);
      try { if (local) { local.removeItem(PREFIX + "vid"); local.removeItem(PREFIX + "uid"); } } catch (e) { /* */ }
      w.clearTimeout(timer); timer = null;
      w.clearTimeout(clock); waiting = null; paused = null; showing = null;
      if (source) { source.close(); source = null; }
      ui.remove();
    },
    start: function () {
      if (!optedOut) return;
      optedOut = false;
      try { if (local) local.removeItem(PREFIX + "optout"); } catch (e) { /* */ }
      consent("opt_in", visitor());
      if (feed) follow(feed); else load(); /* popups come back on this page */
    }
  };
  var dispatch = guard(function (args) {
    var fn = commands[args[0]];
    if (fn) fn.apply(null, Array.prototype.slice.call(args, 1));
  });
  var queued = ns.q || [];
  var api = function () { dispatch(arguments); };
  api.loaded = 1; api.started = 1; api.key = KEY; api.api = API;
  w.northstar = api;


  /* ---- the popup, in a Shadow DOM ---- */
  function styleElement(css) {
    var style = d.createElement("style");
    if (NONCE) style.nonce = NONCE;
    style.textContent = css;
    return style;
  }
  /* The popup's host, in the page's <body> (or, for a preview, in the given element). */
  function popups(parent) {
    var host = null, root = null, wrap = null, live = null, custom = null, current = null;
    function mount(site) {
      if (host) return;
      host = d.createElement("div");
      host.setAttribute("data-northstar", "");
      root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
      var style = styleElement(STYLE);
      custom = styleElement("");
      wrap = d.createElement("div");
      wrap.className = "wrap " + (site.position || "bottom-left") + " " + (site.theme || "auto") + (parent ? " preview" : "");
      live = d.createElement("div");
      live.setAttribute("role", "status");
      live.setAttribute("aria-live", "polite");
      live.setAttribute("aria-atomic", "true");
      wrap.appendChild(live);
      root.appendChild(style); root.appendChild(custom); root.appendChild(wrap);
      (parent || d.body || d.documentElement).appendChild(host);
    }
    function show(entry, message, handlers) {
      hide();
      if (!d.documentElement.contains(host)) (parent || d.body || d.documentElement).appendChild(host); /* the page swapped its body */
      custom.textContent = entry.notification.css || "";
      var popup = d.createElement("div"), body = d.createElement("div"), close = d.createElement("button");
      var href = link(entry.item.url);
      popup.className = "popup" + (href ? " link" : "");
      popup.setAttribute("data-notification", entry.notification.id);
      body.className = "text";
      body.textContent = message;
      close.className = "close";
      close.type = "button";
      close.setAttribute("aria-label", "Dismiss");
      close.textContent = "\u00d7";
      popup.appendChild(body); popup.appendChild(close);
      popup.addEventListener("mouseenter", guard(handlers.hover));
      popup.addEventListener("click", guard(function (e) { if (e.target !== close) handlers.click(); }));
      close.addEventListener("click", guard(function (e) { e.stopPropagation(); handlers.close(); }));
      popup.addEventListener("keydown", guard(function (e) {
        if (e.key === "Escape") handlers.close();
        if (e.key === "Enter" && e.target === popup) handlers.click();
      }));
      if (href) popup.tabIndex = 0;
      live.appendChild(popup);
      current = popup;
      w.requestAnimationFrame ? w.requestAnimationFrame(function () { popup.className += " in"; }) : popup.className += " in";
    }
    function hide() {
      if (current && current.parentNode) current.parentNode.removeChild(current);
      current = null;
    }
    function remove() {
      hide();
      if (host && host.parentNode) host.parentNode.removeChild(host);
      host = null;
    }
    return { mount: mount, show: show, hide: hide, remove: remove };
  }
  var ui = popups(null);

  function preview(container, data) {
    container.textContent = "";
    var n = data && data.v === 1 && data.notifications && data.notifications[0], item = n && n.items && n.items[0];
    if (!item) return false;
    var view = popups(container), site = data.site || {};
    view.mount(site);
    view.show({ notification: n, item: item }, messageOf(item, site.locale), { hover: noop, click: noop, close: noop });
    return true;
  }
  d.addEventListener("keydown", guard(function (e) { if (e.key === "Escape" && showing) showing.close(); }));

  /* ---- what to show, and when ---- */
  function device() {
    var ua = nav.userAgent || "";
    if (/iPad|Tablet/i.test(ua) || (/Android/i.test(ua) && !/Mobile/i.test(ua))) return "tablet";
    return /Mobi|iPhone|iPod|Android/i.test(ua) ? "mobile" : "desktop";
  }
  var relative = null;
  function timeAgo(at, locale) {
    /* Never in the future (a visitor's slow clock), and whole units passed: 59.6 minutes is "59 min. ago". */
    var seconds = Math.min(0, Math.round((Date.parse(at) - Date.now()) / 1000)), units = [["year", 31536e3],
      ["month", 2592e3], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
    if (seconds !== seconds) return ""; /* not a date */
    try { relative = relative || new Intl.RelativeTimeFormat(locale, { numeric: "auto", style: "short" }); }
    catch (e) { relative = null; }
    for (var i = 0; i < units.length; i++) {
      var size = units[i][1], unit = units[i][0];
      if (-seconds >= size || size === 1) {
        var value = Math.trunc(seconds / size);
        if (size === 1 && value > -45) value = 0;
        if (relative) return relative.format(value, unit);
        return value ? -value + " " + unit + (value === -1 ? "" : "s") + " ago" : "just now";
      }
    }
    return "";
  }

  /* The item's text, with the relative time written where its parts split. */
  function messageOf(item, locale) {
    return item.parts.length > 1 ? item.parts.join(item.at ? timeAgo(item.at, locale) : "") : item.parts[0];
  }

  var feed = null, showing = null, shownHere = {};
  var counts = { page: {}, session: read(session, "shown", {}) }, dismissed = {};

  /* Notifications with an audience (rules on the visitor's profile) show once the server says this visitor is in it. */
  var audienceOf = null, asking = false;
  var askAudience = guard(function () {
    if (asking || audienceOf || !w.fetch || optedOut) return;
    asking = true;
    w.fetch(API + "/api/v1/widget/audience", { method: "POST", credentials: "omit", mode: "cors",
      headers: { "Content-Type": "text/plain" }, body: JSON.stringify({ siteKey: KEY, visitor: visitor() }) })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(guard(function (body) {
        var ids = (body && body.data && body.data.notifications) || [], found = {};
        for (var i = 0; i < ids.length; i++) found[ids[i]] = 1;
        audienceOf = found;
        if (feed && !showing && !waiting) { queue = []; cursor = 0; next(); }
      }))
      .catch(function () { asking = false; });
  });

  function eligible(n) {
    if (dismissed[n.id]) return false;
    if (n.audience && !(audienceOf && audienceOf[n.id])) return false;
    if ((n.devices || []).indexOf(device()) < 0) return false;
    if (n.visitors === "new" && returning) return false;
    if (n.visitors === "returning" && !returning) return false;
    var rules = n.display || {};
    if ((counts.page[n.id] || 0) >= (rules.maxPerPage || 5)) return false;
    return (counts.session[n.id] || 0) < (rules.maxPerSession || 20);
  }
  function items(n) {
    var rules = n.display || {}, seen = read(local, "seen", {}), own = ownEvents(), now = Date.now();
    var myTag = userId ? tagOf(userId) : null, ttl = (rules.skipSeenHours || 0) * 36e5;
    return (n.items || []).filter(function (item) {
      if (rules.hideOwnEvents !== false && (own[item.id] || (myTag !== null && item.tag === myTag))) return false;
      return !(n.type === "recent_activity" && ttl && seen[item.id] && now - seen[item.id] < ttl);
    });
  }

  var queue = [], cursor = 0;
  function key(entry) { return entry.notification.id + " " + entry.item.id; }
  function playlist() {
    /* Round-robin over the notifications; one that has fewer events than loopMinEvents shows each only once. */
    var lists = [];
    for (var i = 0; i < feed.notifications.length; i++) {
      var n = feed.notifications[i];
      if (!eligible(n)) continue;
      var list = items(n);
      if (list.length) lists.push({ notification: n, items: list });
    }
    var out = [];
    for (var round = 0, more = true; more; round++) {
      more = false;
      for (var j = 0; j < lists.length; j++) {
        if (round < lists[j].items.length) { out.push({ notification: lists[j].notification, item: lists[j].items[round] }); more = true; }
      }
    }
    /* What this page has not shown yet comes first (new events of a live update); what it has shown repeats only
       when its notification has at least loopMinEvents events. */
    var fresh = out.filter(function (e) { return !shownHere[key(e)]; });
    var again = out.filter(function (e) {
      return shownHere[key(e)] && items(e.notification).length >= ((e.notification.display || {}).loopMinEvents || 0);
    });
    return fresh.concat(again);
  }

  var clock = null, resumeAt = 0, paused = null, waiting = null;
  function wait(ms, then) {
    w.clearTimeout(clock);
    resumeAt = Date.now() + ms;
    waiting = then;
    clock = w.setTimeout(guard(function () { waiting = null; then(); }), ms);
  }
  function pausable() { return feed && feed.notifications.some(function (n) { return (n.display || {}).pauseWhenHidden !== false; }); }
  d.addEventListener("visibilitychange", guard(function () {
    if (!waiting || !pausable()) return;
    if (d.visibilityState === "hidden") { paused = Math.max(0, resumeAt - Date.now()); w.clearTimeout(clock); }
    else if (paused !== null) { var left = paused; paused = null; wait(left, waiting); }
  }));

  function next() {
    if (optedOut) return;
    if (cursor >= queue.length) {
      queue = playlist(); cursor = 0;
      if (!queue.length) return;
    }
    var entry = queue[cursor++];
    if (!eligible(entry.notification)) return next();
    display(entry);
  }

  function display(entry) {
    var n = entry.notification, item = entry.item, rules = n.display || {};
    var message = messageOf(item, feed.site.locale);
    var hovered = false, ended = false;
    function end(gapMs) {
      if (ended) return; ended = true; showing = null;
      ui.hide();
      wait(gapMs, next);
    }
    var handlers = {
      hover: function () { if (!hovered) { hovered = true; send("hover", { notificationId: n.id, variantId: n.variantId, itemId: idOf(item) }); } },
      click: function () {
        send("click", { notificationId: n.id, variantId: n.variantId, itemId: idOf(item) });
        flush(true);
        var href = link(item.url);
        if (href) w.location.assign(href);
      },
      close: function () {
        send("close", { notificationId: n.id, variantId: n.variantId, itemId: idOf(item) });
        dismissed[n.id] = true;
        end((rules.gapSeconds || 0) * 1000);
      }
    };
    ui.show(entry, message, handlers);
    showing = handlers;
    shownHere[key(entry)] = 1;
    counts.page[n.id] = (counts.page[n.id] || 0) + 1;
    counts.session[n.id] = (counts.session[n.id] || 0) + 1;
    write(session, "shown", counts.session);
    if (n.type === "recent_activity") { var seen = read(local, "seen", {}); seen[item.id] = Date.now(); write(local, "seen", prune(seen)); }
    send("impression", { notificationId: n.id, variantId: n.variantId, itemId: idOf(item) });
    wait((rules.durationSeconds || 6) * 1000, function () { end((rules.gapSeconds || 0) * 1000); });
  }
  function idOf(item) { return /^[0-9a-f-]{36}$/i.test(item.id) ? item.id : null; }
  function prune(seen) {
    var keys = Object.keys(seen);
    if (keys.length <= 500) return seen;
    keys.sort(function (a, b) { return seen[b] - seen[a]; });
    var kept = {};
    for (var i = 0; i < 500; i++) kept[keys[i]] = seen[keys[i]];
    return kept;
  }

  function use(data) {
    if (optedOut || !data || data.v !== 1) return;
    var first = !feed;
    feed = data;
    queue = []; cursor = 0; /* the next popup comes from this feed: what is new first */
    persistent = !!(data.site && data.site.persistentVisitorId);
    if (!feed.notifications.length) return;
    if (feed.notifications.some(function (n) { return n.audience; })) askAudience();
    ui.mount(feed.site || {});
    if (first) {
      var delays = feed.notifications.map(function (n) { return (n.display || {}).firstDelaySeconds || 0; });
      wait(Math.min.apply(null, delays) * 1000, next);
    } else if (!showing && !waiting) {
      next();
    }
  }
  /* Show this feed, and follow the page's live feed when it says new events can change what it shows. */
  function follow(data) {
    use(data);
    if (data && data.live) listen();
  }

  /* The page, and the first-party id where the site keeps one: A/B test variants are assigned by it (the variant
     shown rides back on impressions and clicks, so what was shown is what is credited). */
  function pageQuery() {
    var id = persistent && !quiet && !optedOut ? visitor().localId : null; /* no id is kept for who records nothing */
    return "url=" + encodeURIComponent(here()) + (id ? "&vid=" + id : "");
  }
  function feedUrl() {
    return API + "/api/v1/widget/" + encodeURIComponent(KEY) + "/feed?" + pageQuery();
  }
  var load = guard(function () {
    if (!w.fetch) return;
    var controller = w.AbortController ? new AbortController() : null;
    var timeout = w.setTimeout(function () { if (controller) controller.abort(); }, FEED_TIMEOUT);
    w.fetch(feedUrl(), { credentials: "omit", mode: "cors", signal: controller ? controller.signal : undefined })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(guard(function (body) {
        w.clearTimeout(timeout);
        if (body && body.data) follow(body.data);
      }))
      .catch(noop);
  });
  var source = null;
  var listen = guard(function () {
    if (!w.EventSource || source || optedOut) return;
    source = new EventSource(API + "/events/stream?siteKey=" + encodeURIComponent(KEY) + "&" + pageQuery());
    source.addEventListener("feed", guard(function (e) {
      var body = JSON.parse(e.data);
      if (body && body.data) use(body.data);
    }));
    source.onerror = noop;
  });

  for (var i = 0; i < queued.length; i++) dispatch(queued[i]);
  if (!optedOut) {
    send("page_view", { referrer: d.referrer ? String(d.referrer).slice(0, 2048) : null });
    if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", load); else load();
  }
})(window, document);
