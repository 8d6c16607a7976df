/// The stylesheet and script every HTML page of memsift inlines: no
/// network, no library. The script reads the JSON in `<script id="data">`
/// and draws the timeline (`#timeline`) and the flame graph (`#flame`);
/// an error it meets is written into `#errors`, where a test reads it.
enum HTMLAssets {
  static let css = """
    body{font:14px/1.4 system-ui,sans-serif;margin:0 24px 40px;color:#222;background:#fff}
    h1{font-size:20px;margin:16px 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
    pre.totals{background:#f6f6f2;padding:8px 12px;font-size:12px;overflow:auto}
    #errors{color:#b00;background:#fee;padding:8px;white-space:pre-wrap}
    .bar{display:flex;gap:8px;align-items:center;margin:6px 0;flex-wrap:wrap}
    .bar button{border:1px solid #999;background:#f4f4f4;padding:3px 10px;border-radius:3px;cursor:pointer}
    .bar button.on{background:#335;color:#fff;border-color:#335}
    #timeline{width:100%;height:240px;display:block;border:1px solid #ddd;background:#fcfcfc}
    #timeline text{font-size:11px;fill:#444}#timeline .heap{fill:none;stroke:#c0392b;stroke-width:1.5}
    #timeline .rss{fill:none;stroke:#2c6fbb;stroke-width:1.2;stroke-dasharray:4 3}
    #timeline .grid{stroke:#e4e4e4}#timeline .snap{stroke:#7a5;stroke-dasharray:3 3}
    #tip{position:fixed;pointer-events:none;background:#333;color:#fff;font-size:12px;padding:4px 8px;border-radius:3px;white-space:pre}
    #flame{position:relative;width:100%;overflow:hidden;border:1px solid #ddd;background:#fdfdf6}
    .fr{position:absolute;height:17px;box-sizing:border-box;border:1px solid #fdfdf6;font-size:11px;line-height:15px;
      overflow:hidden;white-space:nowrap;padding-left:3px;cursor:pointer;border-radius:2px}
    .fr.anc{opacity:.6}.fr.match{background:#e040fb!important;color:#fff}
    #status{font-size:12px;color:#444;min-height:1.4em;font-family:monospace}
    table{border-collapse:collapse;width:100%;font-size:13px;table-layout:fixed}th:first-child{width:3em}
    td{overflow-wrap:anywhere}th,td{text-align:left;padding:3px 8px;vertical-align:top}
    th{background:#eee}tr:nth-child(even) td{background:#fafafa}td.n{text-align:right;font-family:monospace;white-space:nowrap}
    details summary{cursor:pointer}details ol{margin:4px 0;padding-left:28px;font-family:monospace;font-size:12px}
    .muted{color:#777}.grow{color:#b02a1a}.shrink{color:#1a5fb0}.fr.grow,.fr.shrink{color:#222}
    """

  static let script = #"""
    (function () {
      'use strict';
      var errors = document.getElementById('errors');
      function fail(message) { errors.hidden = false; errors.textContent += message + '\n'; }
      window.addEventListener('error', function (e) { fail('error: ' + e.message); });
      try { main(); document.body.setAttribute('data-rendered', '1'); } catch (e) { fail('error: ' + e); }

      function main() {
        var D = JSON.parse(document.getElementById('data').textContent);
        var tip = document.getElementById('tip');
        function bytes(n) {
          var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
          while (n >= 1024 && i < 4) { n /= 1024; i++; }
          return i ? n.toFixed(1) + ' ' + u[i] : n + ' B';
        }
        function count(n) { return n.toLocaleString('en-US'); }
        function secs(ms) { return (ms / 1000).toFixed(3) + ' s'; }
        function esc(s) {
          return String(s).replace(/[&<>"']/g, function (c) {
            return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
          });
        }
        function showTip(text, ev) {
          tip.hidden = false; tip.textContent = text;
          tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - 340) + 'px';
          tip.style.top = (ev.clientY + 14) + 'px';
        }
        // The fragment can open a view: #metric=leaked&search=NAME&zoom=NAME&rss=0 (a link to share).
        var state = {};
        location.hash.slice(1).split('&').forEach(function (kv) {
          var at = kv.indexOf('=');
          if (at > 0) state[kv.slice(0, at)] = decodeURIComponent(kv.slice(at + 1));
        });
        if (D.timeline) timeline(D.timeline);
        if (D.nodes) flame();

        function timeline(T) {
          var svg = document.getElementById('timeline'), NS = 'http://www.w3.org/2000/svg';
          var L = 70, R = 965, TOP = 12, BOTTOM = 212;
          var dur = Math.max(T.duration, 1), top = 1, cursor, rssBox = document.getElementById('show-rss');
          function X(ms) { return L + (R - L) * ms / dur; }
          function Y(b) { return BOTTOM - (BOTTOM - TOP) * b / top; }
          function add(tag, attrs, text) {
            var e = document.createElementNS(NS, tag);
            for (var k in attrs) e.setAttribute(k, attrs[k]);
            if (text !== undefined) e.textContent = text;
            svg.appendChild(e); return e;
          }
          // Without RSS the scale is the heap's, which RSS often dwarfs.
          function draw() {
            var withRSS = rssBox.checked, i;
            while (svg.firstChild) svg.removeChild(svg.firstChild);
            top = 1;
            for (i = 1; i < T.heap.length; i += 2) top = Math.max(top, T.heap[i]);
            for (i = 1; withRSS && i < T.rss.length; i += 2) top = Math.max(top, T.rss[i]);
            for (i = 0; i <= 4; i++) {
              var b = top * i / 4, y = Y(b);
              add('line', { x1: L, x2: R, y1: y, y2: y, 'class': 'grid' });
              add('text', { x: L - 6, y: y + 4, 'text-anchor': 'end' }, bytes(Math.round(b)));
              add('text', { x: X(dur * i / 4), y: BOTTOM + 16, 'text-anchor': 'middle' }, secs(dur * i / 4));
            }
            if (withRSS) line(T.rss, 'rss', 'rss-line');
            line(T.heap, 'heap', 'heap-line');
            T.snapshots.forEach(function (s, k) {
              var x = X(s[1]);
              add('line', { x1: x, x2: x, y1: TOP, y2: BOTTOM, 'class': 'snap' });
              add('text', { x: x + 3, y: TOP + 10 + (k % 3) * 12, 'class': 'snap-label' }, s[0]);
            });
            if (T.peak) {
              add('circle', { cx: X(T.peak[0]), cy: Y(T.peak[1]), r: 4, fill: '#c0392b', id: 'peak-marker' });
              add('text', { x: X(T.peak[0]) + 6, y: Math.max(Y(T.peak[1]) - 6, TOP + 10), id: 'peak-label' },
                'peak ' + bytes(T.peak[1]) + ' at ' + secs(T.peak[0]));
            }
            cursor = add('line', { x1: 0, x2: 0, y1: TOP, y2: BOTTOM, stroke: '#888', visibility: 'hidden' });
          }
          // A step line: each value holds until the next point, the last one until the end.
          function line(series, cls, id) {
            if (series.length < 2) return;
            var pts = [], y = Y(series[1]);
            for (var j = 0; j < series.length; j += 2) {
              var x = X(series[j]).toFixed(1);
              pts.push(x + ',' + y.toFixed(1));
              y = Y(series[j + 1]);
              pts.push(x + ',' + y.toFixed(1));
            }
            pts.push(X(dur).toFixed(1) + ',' + y.toFixed(1));
            add('polyline', { points: pts.join(' '), 'class': cls, id: id });
          }
          if (state.rss === '0') rssBox.checked = false;
          rssBox.addEventListener('change', draw);
          draw();
          function at(series, ms) {
            var best = -1;
            for (var j = 0; j < series.length; j += 2) { if (series[j] <= ms) best = j; else break; }
            return best < 0 ? null : series[best + 1];
          }
          svg.addEventListener('mousemove', function (ev) {
            var box = svg.getBoundingClientRect();
            var x = (ev.clientX - box.left) * 1000 / box.width;
            var ms = Math.max(0, Math.min(dur, (x - L) / (R - L) * dur));
            cursor.setAttribute('x1', X(ms)); cursor.setAttribute('x2', X(ms)); cursor.setAttribute('visibility', 'visible');
            var heap = at(T.heap, ms), rss = at(T.rss, ms);
            showTip(secs(ms) + '\nheap ' + (heap === null ? '-' : bytes(heap)) + (rss === null ? '' : '\nRSS  ' + bytes(rss)), ev);
          });
          svg.addEventListener('mouseleave', function () { tip.hidden = true; cursor.setAttribute('visibility', 'hidden'); });
        }

        function flame() {
          var W = D.width, S = 3 + W, N = D.nodes.length / S, kids = [], i;
          for (i = 0; i < N; i++) kids.push([]);
          for (i = 1; i < N; i++) kids[D.nodes[i * S + 2]].push(i);
          var isDiff = D.kind === 'diff';
          function name(i) { return D.names[D.nodes[i * S]]; }
          function detail(i) { return D.names[D.nodes[i * S + 1]]; }
          function parent(i) { return D.nodes[i * S + 2]; }
          function v(i, k) { return D.nodes[i * S + 3 + k]; }
          var metric = D.metric || 0, zoom = 0, query = state.search || '';
          D.metrics.forEach(function (m, k) { if (state.metric === m.name) metric = k; });
          for (i = 1; i < N && state.zoom; i++) if (name(i) === state.zoom) { zoom = i; break; }
          document.getElementById('search').value = query;
          function value(i) { return isDiff ? v(i, 0) + v(i, 1) : v(i, metric); }
          function figure(i) {
            if (isDiff) return '+' + bytes(v(i, 0)) + ' / -' + bytes(v(i, 1));
            return D.metrics[metric].bytes ? bytes(value(i)) + ' (' + count(value(i)) + ' B)' : count(value(i)) + ' allocations';
          }
          function hash(s) { var h = 2166136261; for (var k = 0; k < s.length; k++) h = Math.imul(h ^ s.charCodeAt(k), 16777619) >>> 0; return h; }
          function color(i) {
            if (isDiff) {
              // The deeper the colour, the larger the frame's net change against the whole change.
              var g = v(i, 0), s = v(i, 1), all = value(0), t = all ? Math.abs(g - s) / all : 0;
              var k = Math.round(225 - 175 * Math.sqrt(t));
              return g >= s ? ['grow', 'rgb(255,' + k + ',' + k + ')'] : ['shrink', 'rgb(' + k + ',' + k + ',255)'];
            }
            var h = hash(name(i));
            return ['', 'rgb(' + (205 + h % 50) + ',' + (80 + (h >>> 8) % 130) + ',' + (40 + (h >>> 16) % 40) + ')'];
          }
          var bar = document.getElementById('metrics');
          if (!isDiff) {
            bar.innerHTML = D.metrics.map(function (m, k) { return '<button data-m="' + k + '">' + esc(m.name) + '</button>'; }).join('');
            bar.addEventListener('click', function (ev) {
              var m = ev.target.getAttribute('data-m');
              if (m !== null) { metric = +m; zoom = 0; render(); }
            });
          }
          var box = document.getElementById('flame'), status = document.getElementById('status');
          document.getElementById('search').addEventListener('input', function (ev) { query = ev.target.value; render(); });
          document.getElementById('reset').addEventListener('click', function () { zoom = 0; render(); });
          box.addEventListener('click', function (ev) {
            var i = ev.target.getAttribute('data-i');
            if (i !== null) { zoom = +i; render(); }
          });
          box.addEventListener('mousemove', function (ev) {
            var i = ev.target.getAttribute('data-i');
            if (i === null) { tip.hidden = true; return; }
            var all = value(0);
            showTip(name(+i) + '\n' + figure(+i) + (all ? ', ' + (100 * value(+i) / all).toFixed(2) + '% of all' : '') +
              (detail(+i) ? '\n' + detail(+i) : ''), ev);
          });
          box.addEventListener('mouseleave', function () { tip.hidden = true; });
          render();

          function render() {
            if (!isDiff) Array.prototype.forEach.call(bar.children, function (b, k) { b.className = k === metric ? 'on' : ''; });
            var total = value(zoom), html = [], depth = 0, matched = 0, q = query.toLowerCase();
            function frame(i, x, w, d, cls) {
              var c = color(i), match = q && name(i).toLowerCase().indexOf(q) >= 0;
              depth = Math.max(depth, d);
              html.push('<div class="fr ' + cls + ' ' + c[0] + (match ? ' match' : '') + '" data-i="' + i + '" data-name="' +
                esc(name(i)) + '" style="left:' + x.toFixed(4) + '%;width:' + w.toFixed(4) + '%;top:' + d * 18 +
                'px;background:' + c[1] + '">' + esc(name(i)) + '</div>');
              return match;
            }
            var chain = [];
            for (var a = zoom; a !== 0; a = parent(a)) chain.unshift(a);
            chain.unshift(0);
            chain.forEach(function (a, d) { frame(a, 0, 100, d, a === zoom ? '' : 'anc'); });
            function walk(i, x, d, inMatch) {
              var order = kids[i].slice().sort(function (p, r) { return value(r) - value(p); });
              for (var k = 0; k < order.length; k++) {
                var c = order[k], w = total ? 100 * value(c) / total : 0;
                if (w < 0.05) break;
                var m = frame(c, x, w, d + 1, '');
                if (m && !inMatch) matched += value(c);
                walk(c, x, d + 1, inMatch || m);
                x += w;
              }
            }
            if (total > 0) walk(zoom, 0, chain.length - 1, false);
            box.innerHTML = html.join('');
            box.style.height = (depth + 1) * 18 + 2 + 'px';
            status.textContent = (zoom ? 'zoomed on ' + name(zoom) + ': ' : '') + figure(zoom) +
              (q ? '; matching "' + query + '": ' + (total ? (100 * matched / total).toFixed(1) : '0') + '%' : '');
          }
        }
      }
    })();
    """#
}
