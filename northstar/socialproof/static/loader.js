/* Northstar social proof loader: defines northstar(...) and loads the widget without blocking the page. */
(function (w, d) {
  try {
    var key = "__SITE_KEY__", domain = "__DOMAIN__", api = "__API__", src = "__WIDGET__", keep = "__PERSISTENT__";
    var host = String(w.location.hostname || "").toLowerCase().replace(/\.$/, "");
    if (host !== domain && host.slice(-domain.length - 1) !== "." + domain) {
      /* Not the site: load nothing, but let the page's own northstar(...) calls stay harmless. */
      if (typeof w.northstar !== "function") w.northstar = function () {};
      return;
    }
    var ns = w.northstar;
    if (ns && ns.loaded) return;
    if (typeof ns !== "function") {
      ns = function () { (ns.q = ns.q || []).push(arguments); };
      w.northstar = ns;
    }
    ns.loaded = 1; ns.key = key; ns.api = api; ns.pv = keep;
    var script = d.createElement("script");
    script.async = true; script.src = src; script.crossOrigin = "anonymous";
    (d.head || d.documentElement).appendChild(script);
  } catch (e) { /* never break the host page */ }
})(window, document);
