"""The review page's one style sheet and one script, and the Content-Security-Policy that allows
exactly these two (by their SHA-256 hashes) and nothing from the network."""

from __future__ import annotations

import base64
import hashlib

PAGE_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;
background:#fafafa}
header{background:#16324f;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}nav{margin-top:8px}nav a{color:#cfe3ff;margin-right:14px}
main{padding:8px 24px 40px;max-width:1400px}section{margin:22px 0}
h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:12px 0 4px}
.notes li{color:#6b4e00}.charts{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:8px}
figcaption{font-weight:600;margin:0 0 4px 4px}
.chart{max-width:100%;height:auto}.chart text{font:11px system-ui,sans-serif;fill:#333}
.chart .lt{font-weight:600}.chart .grid{stroke:#eee}.chart .axis{stroke:#555}
.chart .frame{stroke:#888}
.scroll{overflow:auto;max-height:640px;border:1px solid #e3e3e3;background:#fff}
table.data{border-collapse:collapse;font-size:13px;white-space:nowrap}
table.data caption{text-align:left;padding:4px 6px;color:#555}
table.data th{position:sticky;top:0;background:#eef2f6;text-align:left;padding:0}
table.data th button{font:inherit;font-weight:600;border:0;background:none;padding:5px 8px;
cursor:pointer;width:100%;text-align:left}
table.data th[data-type=none]{padding:5px 8px}
table.data th[aria-sort=ascending] button::after{content:" ▲"}
table.data th[aria-sort=descending] button::after{content:" ▼"}
table.data td{padding:3px 8px;border-top:1px solid #f0f0f0}table.data td[data-v]{text-align:right}
table.data tbody tr:nth-child(even){background:#fbfbfd}
table.kv td:first-child{font-weight:600;color:#444}
.tools{margin:6px 0}.tools input{font:inherit;padding:4px 8px;width:280px}
.count{color:#666;margin-left:8px}
img.thumb{image-rendering:pixelated;border:1px solid #ccc;vertical-align:middle;background:#fff}
footer{color:#777;padding:0 24px 24px}
"""


PAGE_SCRIPT = """
(function () {
  "use strict";
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  function setup(table) {
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
    var heads = table.tHead.rows[0].cells;
    var state = {col: -1, dir: 1};
    for (var i = 0; i < heads.length; i++) {
      if (heads[i].getAttribute("aria-sort") === "ascending") { state.col = i; }
      var button = heads[i].querySelector("button");
      if (button) { button.addEventListener("click", sortBy.bind(null, i)); }
    }
    function key(row, i, numeric) {
      var cell = row.cells[i];
      if (!numeric) { return cell.textContent; }
      var v = cell.getAttribute("data-v");
      return v === null || v === "" ? NaN : parseFloat(v);
    }
    function sortBy(i) {
      var numeric = heads[i].getAttribute("data-type") === "num";
      var dir = state.col === i ? -state.dir : 1;
      state = {col: i, dir: dir};
      var items = rows.map(function (r, k) { return [key(r, i, numeric), k]; });
      items.sort(function (a, b) {
        var x = a[0], y = b[0], c;
        if (numeric) {
          var xn = isNaN(x), yn = isNaN(y);
          if (xn || yn) { c = xn === yn ? 0 : (xn ? 1 : -1); return c || a[1] - b[1]; }
          c = x < y ? -dir : (x > y ? dir : 0);
        } else {
          c = collator.compare(x, y) * dir;
        }
        return c || a[1] - b[1];
      });
      var frag = document.createDocumentFragment();
      items.forEach(function (it) { frag.appendChild(rows[it[1]]); });
      tbody.appendChild(frag);
      for (var h = 0; h < heads.length; h++) {
        if (h === i) {
          heads[h].setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
        } else {
          heads[h].removeAttribute("aria-sort");
        }
      }
    }
    var input = document.querySelector('input.filter[data-table="' + table.id + '"]');
    var count = document.querySelector('[data-count-for="' + table.id + '"]');
    if (input) {
      input.addEventListener("input", function () {
        var q = input.value.trim().toLowerCase(), shown = 0;
        rows.forEach(function (r, k) {
          var hide = q !== "" && texts[k].indexOf(q) < 0;
          r.hidden = hide;
          if (!hide) { shown++; }
        });
        if (count) { count.textContent = shown + " of " + rows.length + " rows"; }
      });
    }
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), setup);
})();
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: The page's Content-Security-Policy: nothing from the network; only its own script and style.
CSP = (
    f"default-src 'none'; script-src {_sha256(PAGE_SCRIPT)}; style-src {_sha256(PAGE_STYLE)}; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)
