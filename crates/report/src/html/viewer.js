// The report viewer: reads the data embedded in the page (see model.rs for its layout) and
// renders the heat map and one view at a time, chosen by the URL fragment, so every view can be
// linked to. Nothing is fetched.
(function () {
  'use strict';

  const D = JSON.parse(document.getElementById('data').textContent);
  const S = D.strings;
  const DIFF = D.mode === 'diff';
  const STATUS = ['conflict-free', 'conflicted', 'unknown'];
  const LIMIT = 300;

  const pairName = (p) => D.calls[D.pairs[p][0]] + '/' + D.calls[D.pairs[p][1]];
  const pairByName = new Map(D.pairs.map((_, i) => [pairName(i), i]));

  // Per run: tests by id and by pair, and for each code site and shared object the tests whose
  // shared locations it is in.
  const runs = D.runs.map(indexRun);
  function indexRun(r) {
    const byId = new Map();
    const byPair = D.pairs.map(() => []);
    const siteTests = new Map();
    const objectTests = new Map();
    r.tests.forEach((t, i) => {
      byId.set(t[0], i);
      byPair[t[1]].push(i);
      const sites = new Set();
      const objects = new Set();
      for (const loc of t[3]) {
        objects.add(loc[2]);
        for (const s of loc[5][2]) sites.add(s);
        for (const s of loc[6][2]) sites.add(s);
      }
      t.sites = sites;
      t.objects = objects;
      t.mismatched = t[5].length > 0;
      for (const s of sites) push(siteTests, s, i);
      for (const o of objects) push(objectTests, o, i);
    });
    return { r, byId, byPair, siteTests, objectTests };
  }
  function push(map, k, v) {
    const a = map.get(k);
    if (a) a.push(v); else map.set(k, [v]);
  }
  // The suite's side of the tests (initial states, arguments, expected results): parsed the
  // first time a test is opened.
  let suite = null;
  function suiteData() {
    if (!suite) {
      const C = JSON.parse(document.getElementById('cases').textContent);
      suite = { setups: C.setups, cases: new Map(C.cases.map((c) => [c[0], c])) };
    }
    return suite;
  }
  const cur = runs[runs.length - 1];

  // ---- small helpers ------------------------------------------------------------------
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }
  function link(hash, text) {
    return '<a href="#' + esc(hash) + '">' + esc(text) + '</a>';
  }
  function str(i) { return i < 0 ? null : S[i]; }
  function frameText(f) {
    const [fn, file, line] = D.frames[f];
    let s = str(fn) || '??';
    if (file >= 0) s += ' (' + S[file] + (line ? ':' + line : '') + ')';
    return s;
  }
  function siteLabel(i) {
    const [pc, mode, sym, off, frames] = D.sites[i];
    const user = mode === 'user' ? 'user:' : '';
    if (frames.length === 0) return user + (sym >= 0 ? S[sym] + '+' + off : pc);
    let s = user + frameText(frames[0]);
    if (frames.length > 1) {
      const outer = str(D.frames[frames[frames.length - 1]][0]);
      if (outer) s += ' in ' + outer;
    }
    return s;
  }
  function objectLabel(i) { return D.objects[i][1]; }
  function badge(kind) { return '<span class="badge b-' + kind + '">' + kind + '</span>'; }
  function statusOf(t) { return STATUS[t[2]]; }
  function fraction(free, tests) { return tests > 0 ? free / tests : null; }
  function mix(from, to, t) {
    return '#' + [0, 1, 2].map((i) => Math.round(from[i] + (to[i] - from[i]) * t).toString(16).padStart(2, '0')).join('');
  }
  // Red (none) through yellow to green (all conflict-free): the SVG heat map's scale.
  function colour(f) {
    if (f === null) return '#dddddd';
    const RED = [215, 48, 39], YELLOW = [254, 224, 139], GREEN = [26, 152, 80];
    f = Math.min(1, Math.max(0, f));
    return f < 0.5 ? mix(RED, YELLOW, f * 2) : mix(YELLOW, GREEN, (f - 0.5) * 2);
  }
  // A diff's cells: red where the conflict-free share fell, blue where it rose.
  function deltaColour(d) {
    if (d === null) return '#dddddd';
    const WHITE = [247, 247, 247], RED = [202, 0, 32], BLUE = [5, 113, 176];
    if (Math.abs(d) < 1e-9) return mix(WHITE, WHITE, 0);
    const t = Math.min(1, 0.25 + Math.abs(d) * 3);
    return d < 0 ? mix(WHITE, RED, t) : mix(WHITE, BLUE, t);
  }

  function pairCounts(run, p) {
    const ids = run.byPair[p];
    const c = { tests: run.r.pair_tests[p], free: 0, conflicted: 0, unknown: 0, mismatched: 0 };
    for (const i of ids) {
      const t = run.r.tests[i];
      if (t[2] === 0) c.free++; else if (t[2] === 1) c.conflicted++;
      if (t.mismatched) c.mismatched++;
    }
    c.unknown = Math.max(0, c.tests - c.free - c.conflicted);
    return c;
  }

  // ---- the heat map -------------------------------------------------------------------
  const CELL = 26, LABEL = 80;
  function renderMap() {
    const n = D.calls.length;
    const w = LABEL + n * CELL + 10, h = n * CELL + LABEL + 10;
    let s = '<svg xmlns="http://www.w3.org/2000/svg" width="' + w + '" height="' + h + '" font-size="11">';
    D.pairs.forEach((pc, p) => {
      const col = Math.min(pc[0], pc[1]), row = Math.max(pc[0], pc[1]);
      const x = LABEL + col * CELL, y = row * CELL;
      const now = pairCounts(cur, p);
      let fill, text, tip;
      if (DIFF) {
        const old = pairCounts(runs[0], p);
        const fo = fraction(old.free, old.tests), fn = fraction(now.free, now.tests);
        fill = deltaColour(fo === null || fn === null ? null : fn - fo);
        const dc = now.conflicted - old.conflicted;
        text = dc === 0 ? '' : (dc > 0 ? '+' : '') + dc;
        tip = pairName(p) + ': conflict-free ' + old.free + '/' + old.tests + ' \u2192 ' + now.free + '/' + now.tests;
      } else {
        fill = colour(fraction(now.free, now.tests));
        text = now.conflicted > 0 ? String(now.conflicted) : '';
        tip = pairName(p) + ': ' + now.free + ' of ' + now.tests + ' conflict-free';
      }
      s += '<rect class="cell" data-pair="' + p + '" x="' + x + '" y="' + y + '" width="' + CELL + '" height="' + CELL +
        '" fill="' + fill + '"><title>' + esc(tip) + '</title></rect>';
      if (text) s += '<text x="' + (x + CELL / 2) + '" y="' + (y + CELL / 2 + 4) + '" text-anchor="middle" font-size="9">' + esc(text) + '</text>';
    });
    D.calls.forEach((c, i) => {
      s += '<text x="' + (LABEL - 4) + '" y="' + (i * CELL + CELL / 2 + 4) + '" text-anchor="end">' + esc(c) + '</text>';
      const x = LABEL + i * CELL + CELL / 2 + 4, y = n * CELL + 6;
      s += '<text x="' + x + '" y="' + y + '" text-anchor="end" transform="rotate(-60 ' + x + ' ' + y + ')">' + esc(c) + '</text>';
    });
    s += '</svg>';
    const legend = DIFF
      ? 'Cells: change of the conflict-free share (red fell, blue rose); numbers: change in conflicted tests.'
      : 'Cells: conflict-free share (red none, green all); numbers: conflicted tests.';
    const map = document.getElementById('map');
    map.innerHTML = s + '<div class="legend">' + esc(legend) + '</div>';
    map.addEventListener('click', (e) => {
      const p = e.target.getAttribute && e.target.getAttribute('data-pair');
      if (p !== null && p !== undefined) go({ pair: pairName(Number(p)) });
    });
  }
  function markCell(p) {
    for (const c of document.querySelectorAll('.cell.current')) c.classList.remove('current');
    if (p !== null && p !== undefined) {
      const c = document.querySelector('.cell[data-pair="' + p + '"]');
      if (c) c.classList.add('current');
    }
  }

  // ---- routing ------------------------------------------------------------------------
  function parseHash() {
    const out = {};
    const h = location.hash.replace(/^#/, '');
    if (!h) return out;
    for (const part of h.split('&')) {
      const eq = part.indexOf('=');
      const k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
      out[k] = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
    }
    return out;
  }
  function hashOf(q) {
    return Object.keys(q).filter((k) => q[k] !== undefined && q[k] !== null && q[k] !== 'all')
      .map((k) => q[k] === '' ? encodeURIComponent(k) : encodeURIComponent(k) + '=' + encodeURIComponent(q[k]).replace(/%2F/g, '/'))
      .join('&');
  }
  function go(q) { location.hash = hashOf(q); }

  let query = {};
  let expanded = false;
  function render() {
    query = parseHash();
    const view = document.getElementById('view');
    let html;
    let pair = null;
    if ('test' in query) {
      html = testView(query.test);
      const i = cur.byId.get(query.test);
      const t = i !== undefined ? cur.r.tests[i] : runs[0].r.tests[runs[0].byId.get(query.test)];
      if (t) pair = t[1];
    } else if ('pair' in query) {
      pair = pairByName.has(query.pair) ? pairByName.get(query.pair) : null;
      html = pairView(pair, query);
    } else if ('site' in query) {
      html = siteView(Number(query.site));
    } else if ('sites' in query) {
      html = sitesView(query);
    } else {
      html = overview();
    }
    view.innerHTML = html;
    markCell(pair);
    selected = -1;
    for (const sel of view.querySelectorAll('select[data-filter]')) {
      sel.addEventListener('change', () => {
        const q = Object.assign({}, query);
        q[sel.getAttribute('data-filter')] = sel.value;
        go(q);
      });
    }
    const more = view.querySelector('button.more');
    if (more) more.addEventListener('click', () => { expanded = true; render(); });
    expanded = false;
    // For tests: the hash this view shows (a hashchange renders after the hash has changed).
    document.body.setAttribute('data-shown', location.hash);
  }

  // ---- views --------------------------------------------------------------------------
  function overview() {
    let s = '';
    runs.forEach((run, k) => {
      let tests = 0, free = 0, conflicted = 0, mism = 0;
      D.pairs.forEach((_, p) => {
        const c = pairCounts(run, p);
        tests += c.tests; free += c.free; conflicted += c.conflicted; mism += c.mismatched;
      });
      const label = DIFF ? (k === 0 ? 'Old: ' : 'New: ') : '';
      s += '<h2>' + esc(label + run.r.title) + '</h2><p>' + free + ' of ' + tests + ' tests conflict-free (' +
        (tests ? (100 * free / tests).toFixed(1) : '-') + '%), ' + conflicted + ' conflicted, ' + mism + ' with result mismatches.</p>';
    });
    if (DIFF) s += diffLists();
    s += '<p class="muted">Click a cell for its call pair\'s tests, or see the ' + link('sites', 'code sites') + ' ranked by the tests they affect.</p>';
    s += '<h3>Call pairs</h3>' + pairTable();
    return s;
  }
  function pairTable() {
    let s = '<table><tr><th>call pair</th>';
    s += DIFF ? '<th class="n">old free</th><th class="n">new free</th><th class="n">became conflicted</th><th class="n">became free</th>'
      : '<th class="n">tests</th><th class="n">conflict-free</th><th class="n">conflicted</th><th class="n">unknown</th><th class="n">mismatched</th>';
    s += '</tr>';
    D.pairs.forEach((_, p) => {
      const c = pairCounts(cur, p);
      s += '<tr class="row" data-href="' + esc(hashOf({ pair: pairName(p) })) + '"><td>' + link(hashOf({ pair: pairName(p) }), pairName(p)) + '</td>';
      if (DIFF) {
        const o = pairCounts(runs[0], p);
        const ch = changes(p);
        s += '<td class="n">' + o.free + '/' + o.tests + '</td><td class="n">' + c.free + '/' + c.tests + '</td><td class="n">' +
          ch.worse + '</td><td class="n">' + ch.better + '</td>';
      } else {
        s += '<td class="n">' + c.tests + '</td><td class="n">' + c.free + '</td><td class="n">' + c.conflicted + '</td><td class="n">' +
          c.unknown + '</td><td class="n">' + c.mismatched + '</td>';
      }
      s += '</tr>';
    });
    return s + '</table>';
  }
  // A test's verdict in both runs of a diff: 'became-conflicted', 'became-conflict-free',
  // 'changed' (to or from unknown), 'same', or 'one-run'.
  function change(id) {
    const a = runs[0].byId.get(id), b = runs[1].byId.get(id);
    if (a === undefined || b === undefined) return 'one-run';
    const x = runs[0].r.tests[a][2], y = runs[1].r.tests[b][2];
    if (x === y) return 'same';
    if (x === 0 && y === 1) return 'became-conflicted';
    if (x === 1 && y === 0) return 'became-conflict-free';
    return 'changed';
  }
  function changes(p) {
    let worse = 0, better = 0;
    for (const i of cur.byPair[p]) {
      const c = change(cur.r.tests[i][0]);
      if (c === 'became-conflicted') worse++; else if (c === 'became-conflict-free') better++;
    }
    return { worse, better };
  }
  // Sites of shared locations in one run only.
  function siteDelta() {
    const appeared = [], vanished = [];
    const keys = new Set([...runs[0].siteTests.keys(), ...runs[1].siteTests.keys()]);
    const byLabel = (run) => {
      const m = new Map();
      for (const [s, ts] of run.siteTests) m.set(siteLabel(s), (m.get(siteLabel(s)) || 0) + ts.length);
      return m;
    };
    const o = byLabel(runs[0]), n = byLabel(runs[1]);
    const seen = new Set();
    for (const s of keys) {
      const l = siteLabel(s);
      if (seen.has(l)) continue;
      seen.add(l);
      if (!o.has(l)) appeared.push([s, n.get(l)]);
      else if (!n.has(l)) vanished.push([s, o.get(l)]);
    }
    const order = (a, b) => b[1] - a[1] || (siteLabel(a[0]) < siteLabel(b[0]) ? -1 : 1);
    return { appeared: appeared.sort(order), vanished: vanished.sort(order) };
  }
  function diffLists() {
    let worse = [], better = [];
    for (const t of cur.r.tests) {
      const c = change(t[0]);
      if (c === 'became-conflicted') worse.push(t[0]); else if (c === 'became-conflict-free') better.push(t[0]);
    }
    const ids = (title, list) => '<h3>' + esc(title) + ': ' + list.length + '</h3>' + (list.length
      ? '<p>' + list.slice(0, 50).map((id) => link(hashOf({ test: id }), id)).join(', ') + (list.length > 50 ? ', \u2026' : '') + '</p>' : '');
    const d = siteDelta();
    const sites = (title, list) => '<h3>' + esc(title) + ': ' + list.length + '</h3>' + (list.length
      ? '<table>' + list.slice(0, 30).map(([s, n]) => '<tr><td class="n">' + n + ' tests</td><td>' + link(hashOf({ site: s }), siteLabel(s)) + '</td></tr>').join('') + '</table>' : '');
    return ids('Became conflicted', worse) + ids('Became conflict-free', better) +
      sites('Code sites that appeared', d.appeared) + sites('Code sites that vanished', d.vanished);
  }

  function outcomeMatches(run, t, outcome) {
    switch (outcome) {
      case undefined: case '': case 'all': return true;
      case 'mismatched': return t.mismatched;
      case 'became-conflicted': case 'became-conflict-free': case 'changed': return change(t[0]) === outcome;
      default: return statusOf(t) === outcome;
    }
  }
  function options(name, current, list) {
    let s = '<label>' + esc(name) + ' <select data-filter="' + esc(name) + '">';
    for (const [v, text] of list) s += '<option value="' + esc(v) + '"' + (String(v) === String(current || 'all') ? ' selected' : '') + '>' + esc(text) + '</option>';
    return s + '</select></label>';
  }

  function pairView(p, q) {
    if (p === null) return '<p>No call pair ' + esc(q.pair) + ' in this report.</p>';
    const run = cur;
    const all = run.byPair[p].map((i) => run.r.tests[i]);
    const c = pairCounts(run, p);
    let s = '<h2>' + esc(pairName(p)) + '</h2><p>' + c.tests + ' tests: ' + c.free + ' conflict-free, ' + c.conflicted +
      ' conflicted, ' + c.unknown + ' unknown, ' + c.mismatched + ' mismatched.</p>';
    const siteCount = new Map(), objCount = new Map();
    for (const t of all) {
      for (const x of t.sites) siteCount.set(x, (siteCount.get(x) || 0) + 1);
      for (const x of t.objects) objCount.set(x, (objCount.get(x) || 0) + 1);
    }
    const ranked = (m, label) => [...m.entries()].sort((a, b) => b[1] - a[1] || (label(a[0]) < label(b[0]) ? -1 : 1));
    let outcomes = [['all', 'all'], ['conflicted', 'conflicted'], ['conflict-free', 'conflict-free'], ['mismatched', 'mismatched'], ['unknown', 'unknown']];
    if (DIFF) outcomes = outcomes.concat([['became-conflicted', 'became conflicted'], ['became-conflict-free', 'became conflict-free'], ['changed', 'other change']]);
    s += '<div class="filters">' + options('outcome', q.outcome, outcomes) +
      options('site', q.site, [['all', 'any code site']].concat(ranked(siteCount, siteLabel).map(([x, n]) => [x, siteLabel(x) + ' (' + n + ')']))) +
      options('object', q.object, [['all', 'any shared object']].concat(ranked(objCount, objectLabel).map(([x, n]) => [x, objectLabel(x) + ' (' + n + ')']))) +
      '</div>';
    const site = q.site !== undefined ? Number(q.site) : null;
    const obj = q.object !== undefined ? Number(q.object) : null;
    const shown = all.filter((t) => outcomeMatches(run, t, q.outcome) && (site === null || t.sites.has(site)) && (obj === null || t.objects.has(obj)));
    s += '<p id="count">' + shown.length + ' of ' + all.length + ' tests shown.</p>';
    s += testTable(shown);
    return s;
  }
  function testTable(tests) {
    let s = '<table id="tests"><tr><th>test</th><th>outcome</th><th>shared objects</th></tr>';
    const list = expanded ? tests : tests.slice(0, LIMIT);
    for (const t of list) {
      let out = badge(statusOf(t));
      if (t.mismatched) out += ' ' + badge('mismatched');
      if (DIFF) {
        const c = change(t[0]);
        if (c !== 'same') out = esc(c.replace(/-/g, ' ')) + ' ' + out;
      }
      const objs = [...t.objects].map(objectLabel).join(', ');
      const h = hashOf({ test: t[0] });
      s += '<tr class="row" data-href="' + esc(h) + '"><td class="mono">' + link(h, t[0]) + '</td><td>' + out + '</td><td>' + esc(objs) + '</td></tr>';
    }
    s += '</table>';
    if (list.length < tests.length) s += '<button type="button" class="more">Show all ' + tests.length + ' tests</button>';
    return s;
  }

  function siteHtml(i) {
    const [pc, mode, sym, off, frames] = D.sites[i];
    let s = link(hashOf({ site: i }), siteLabel(i)) + ' <span class="muted mono">' + esc(pc) + (sym >= 0 ? ' ' + esc(S[sym]) + '+' + esc(off) : '') + (mode === 'user' ? ' user' : '') + '</span>';
    if (frames.length > 1) s += '<ol class="frames">' + frames.map((f) => '<li>' + esc(frameText(f)) + '</li>').join('') + '</ol>';
    return s;
  }
  // The call stack of an access's first site: each caller's call instruction, innermost first.
  function callers(stack) {
    if (!stack || !stack.length) return '';
    return '<div class="stack"><span class="muted">called from</span><ol class="frames">' +
      stack.map((i) => '<li>' + esc(siteLabel(i)) + ' <span class="muted mono">' + esc(D.sites[i][0]) + '</span></li>').join('') + '</ol></div>';
  }
  function locationRows(locs) {
    let s = '<table class="locations"><tr><th>location</th><th>kind</th><th>bytes</th><th>call a</th><th>call b</th></tr>';
    for (const [addr, size, obj, label, vaddr, a, b] of locs) {
      const side = (acc) => '<b>' + esc(acc[0]) + '</b> <span class="muted">' + esc(acc[1]) + '</span><br>' + acc[2].map(siteHtml).join('<br>') + callers(acc[3]);
      s += '<tr><td>' + esc(S[label]) + '<br><span class="muted mono">' + esc(addr) + (vaddr ? ' (' + esc(vaddr) + ')' : '') + '</span></td><td>' +
        esc(D.objects[obj][0]) + '</td><td class="n">' + size + '</td><td>' + side(a) + '</td><td>' + side(b) + '</td></tr>';
    }
    return s + '</table>';
  }
  // A state compactly: one line per field, and per element of a field that is a list.
  function state(v) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return '<pre>' + compact(v) + '</pre>';
    let s = '';
    for (const k of Object.keys(v)) {
      const x = v[k];
      if (Array.isArray(x) && x.length > 0) s += k + ':\n' + x.map((e, i) => '  ' + i + ': ' + JSON.stringify(e)).join('\n') + '\n';
      else s += k + ': ' + JSON.stringify(x) + '\n';
    }
    return '<pre>' + esc(s) + '</pre>';
  }
  function compact(v) { return esc(JSON.stringify(v)); }

  function testView(id) {
    const found = runs.filter((run) => run.byId.has(id));
    if (found.length === 0) return '<p>No test ' + esc(id) + ' in this report.</p>';
    const first = found[0].r.tests[found[0].byId.get(id)];
    let s = '<h2 class="mono">' + esc(id) + '</h2><p>' + link(hashOf({ pair: pairName(first[1]) }), pairName(first[1])) + '</p>';
    const su = suiteData();
    const c = su.cases.get(id);
    if (c) {
      const [, path, setup, calls, expected, idem] = c;
      s += '<p class="muted">path ' + esc(path) + (idem && idem.length ? ' · idempotent: ' + esc(idem.join(', ')) : '') + '</p><h3>Calls</h3><table><tr><th>slot</th><th>call</th><th>arguments</th></tr>' +
        calls.map(([slot, call, args]) => '<tr><td>' + esc(slot) + '</td><td>' + esc(call) + '</td><td class="mono">' + compact(args) + '</td></tr>').join('') + '</table>';
      s += '<h3>Expected results</h3><table><tr><th>order</th><th>slot</th><th>result</th></tr>' +
        expected.map(([order, slot, result]) => '<tr><td>' + esc(order) + '</td><td>' + esc(slot) + '</td><td class="mono">' + compact(result) + '</td></tr>').join('') + '</table>';
      s += '<h3>Initial state</h3>' + state(su.setups[setup]);
    } else if (su.cases.size === 0) {
      s += '<p class="muted">Initial state, arguments and expected results: make the report with the suite (<code>--tests tests.json</code>).</p>';
    }
    for (const run of runs) {
      const i = run.byId.get(id);
      s += '<div class="run">';
      if (DIFF) s += '<h3>' + (run === runs[0] ? 'Old: ' : 'New: ') + esc(run.r.title) + '</h3>';
      if (i === undefined) { s += '<p>Not in this run.</p></div>'; continue; }
      const t = run.r.tests[i];
      const idemSlots = c && c[5] && c[5].length ? c[5] : null;
      s += '<p>' + badge(statusOf(t)) + (idemSlots && statusOf(t) === 'conflicted' ? ' (idempotent: ' + esc(idemSlots.join(', ')) + ')' : '') +
        (t.mismatched ? ' ' + badge('mismatched') : '') + '</p>';
      s += '<h3>Actual results</h3>' + (t[5].length === 0
        ? (t[2] === 2 ? '<p class="muted">Not known (see errors).</p>' : '<p>As expected.</p>')
        : '<ul>' + t[5].map(([slot, call, det]) => '<li>' + esc(slot) + ' (' + esc(call) + '): ' + esc(det.join('; ')) + '</li>').join('') + '</ul>');
      if (t[6].length) s += '<h3>Errors</h3><ul>' + t[6].map(([k, m]) => '<li>' + esc(k) + ': ' + esc(m) + '</li>').join('') + '</ul>';
      s += '<h3>Shared locations: ' + t[3].length + '</h3>' + (t[3].length ? locationRows(t[3]) : '');
      if (t[4].length) s += '<h3>False sharing (same cache line, no common byte): ' + t[4].length + '</h3>' + locationRows(t[4]);
      s += '</div>';
    }
    return s;
  }

  // Code sites ranked by the tests, then the pairs, whose shared locations they touched.
  function rankedSites(run) {
    const rows = [];
    for (const [s, ts] of run.siteTests) {
      const pairs = new Set(ts.map((i) => run.r.tests[i][1]));
      rows.push([s, ts.length, pairs.size]);
    }
    return rows.sort((a, b) => b[1] - a[1] || b[2] - a[2] || a[0] - b[0]);
  }
  function sitesView(q) {
    const rows = rankedSites(cur);
    let s = '<h2>Code sites</h2><p>' + rows.length + ' code sites touched memory both calls of a test shared, ranked by the tests (then call pairs) they affect' +
      (DIFF ? ' in the new run' : '') + '.</p>';
    s += '<table id="sites"><tr><th class="n">tests</th><th class="n">pairs</th>' + (DIFF ? '<th class="n">old tests</th>' : '') + '<th>code site</th></tr>';
    const list = expanded ? rows : rows.slice(0, LIMIT);
    for (const [x, n, p] of list) {
      const h = hashOf({ site: x });
      s += '<tr class="row" data-href="' + esc(h) + '"><td class="n">' + n + '</td><td class="n">' + p + '</td>' +
        (DIFF ? '<td class="n">' + ((runs[0].siteTests.get(x) || []).length) + '</td>' : '') + '<td>' + link(h, siteLabel(x)) + '</td></tr>';
    }
    s += '</table>';
    if (list.length < rows.length) s += '<button type="button" class="more">Show all ' + rows.length + ' code sites</button>';
    return s;
  }
  function siteView(x) {
    if (!(x >= 0 && x < D.sites.length)) return '<p>No code site ' + esc(String(x)) + ' in this report.</p>';
    let s = '<h2>' + esc(siteLabel(x)) + '</h2><p>' + siteHtml(x) + '</p>';
    for (const run of runs) {
      const ts = run.siteTests.get(x) || [];
      if (DIFF) s += '<h3>' + (run === runs[0] ? 'Old: ' : 'New: ') + esc(run.r.title) + ': ' + ts.length + ' tests</h3>';
      const perPair = new Map();
      for (const i of ts) push(perPair, run.r.tests[i][1], i);
      s += '<h3>Call pairs: ' + perPair.size + '</h3><table class="site-pairs"><tr><th>call pair</th><th class="n">tests</th></tr>';
      for (const [p, list] of [...perPair.entries()].sort((a, b) => b[1].length - a[1].length || a[0] - b[0])) {
        const h = hashOf({ pair: pairName(p), site: x });
        s += '<tr class="row" data-href="' + esc(h) + '"><td>' + link(h, pairName(p)) + '</td><td class="n">' + list.length + '</td></tr>';
      }
      s += '</table><h3>Tests: ' + ts.length + '</h3>';
      s += testTable(ts.map((i) => run.r.tests[i]));
    }
    return s;
  }

  // ---- keyboard -----------------------------------------------------------------------
  let selected = -1;
  function rows() { return [...document.querySelectorAll('#view tr.row')]; }
  function select(k) {
    const r = rows();
    if (r.length === 0) return;
    selected = Math.max(0, Math.min(r.length - 1, k));
    r.forEach((row, i) => row.classList.toggle('selected', i === selected));
    r[selected].scrollIntoView({ block: 'nearest' });
  }
  function moveCell(dx, dy) {
    const cp = 'pair' in query && pairByName.has(query.pair) ? D.pairs[pairByName.get(query.pair)] : [0, 0];
    let col = Math.min(cp[0], cp[1]) + dx, row = Math.max(cp[0], cp[1]) + dy;
    const n = D.calls.length;
    row = Math.max(0, Math.min(n - 1, row));
    col = Math.max(0, Math.min(row, col));
    const p = D.pairs.findIndex((q) => Math.min(q[0], q[1]) === col && Math.max(q[0], q[1]) === row);
    if (p >= 0) go({ pair: pairName(p) });
  }
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const tag = e.target && e.target.tagName;
    if (tag === 'SELECT' || tag === 'INPUT' || tag === 'TEXTAREA') return;
    const keys = {
      j: () => select(selected + 1), k: () => select(selected - 1),
      Enter: () => { const r = rows()[selected]; if (r) location.hash = r.getAttribute('data-href'); },
      Escape: up, g: () => go({}), s: () => go({ sites: '' }), '?': toggleHelp,
      ArrowLeft: () => moveCell(-1, 0), ArrowRight: () => moveCell(1, 0),
      ArrowUp: () => moveCell(0, -1), ArrowDown: () => moveCell(0, 1),
    };
    const f = keys[e.key];
    if (f) { e.preventDefault(); f(); }
  });
  function up() {
    if ('test' in query) {
      const run = runs.find((r) => r.byId.has(query.test));
      if (run) return go({ pair: pairName(run.r.tests[run.byId.get(query.test)][1]) });
    }
    if ('site' in query && !('pair' in query)) return go({ sites: '' });
    go({});
  }
  function toggleHelp() {
    const h = document.getElementById('help');
    h.hidden = !h.hidden;
  }
  document.getElementById('help-button').addEventListener('click', toggleHelp);

  renderMap();
  window.addEventListener('hashchange', render);
  render();
  // For tests and benchmarks: the time from navigation start to the first full render.
  document.body.setAttribute('data-ready', String(Math.round(performance.now())));
})();
