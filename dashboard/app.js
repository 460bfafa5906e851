// The trellisd dashboard: one WebSocket (/live) brings a snapshot a second; this file draws it.
// Plain browser JS, no build step. Tables show one page (the daemon pages them), so the page
// stays fast with any number of objects.
'use strict';
(function () {
  const PAGE = 100;
  const HISTORY = 600;
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get('token');
  const query = { objects: { offset: 0, limit: PAGE, pattern: '' }, names: { offset: 0, limit: PAGE, pattern: '' } };
  const samples = { t: [], used: [], limit: [], spilled: [] };
  let socket;
  let chart;
  let retryMs = 500;

  function escapeHtml(text) {
    return String(text).replace(
      /[&<>"']/g,
      (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
    );
  }

  function bytes(n) {
    if (n === undefined || n === null) return '';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
  }

  function age(createdAt, now) {
    const s = Math.max(0, Math.round((now - createdAt) / 1000));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
    return `${Math.floor(s / 86400)}d`;
  }

  function rows(tbody, items, columns, render) {
    tbody.innerHTML =
      items.length === 0 ? `<tr><td class="empty" colspan="${columns}">none</td></tr>` : items.map(render).join('');
  }

  function connect() {
    const url = new URL('/live', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (token) url.searchParams.set('token', token);
    socket = new WebSocket(url);
    socket.onopen = () => {
      retryMs = 500;
      setState('live', 'live');
      ask();
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === 'history') history(message.samples);
      else if (message.type === 'snapshot') draw(message);
    };
    socket.onclose = () => {
      setState('down', 'disconnected, retrying');
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  function setState(kind, text) {
    const el = $('connection');
    el.className = `state ${kind}`;
    el.textContent = text;
  }

  function ask() {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(query));
  }

  function history(list) {
    samples.t = [];
    samples.used = [];
    samples.limit = [];
    samples.spilled = [];
    for (const sample of list) push(sample);
    redrawChart();
  }

  function push(sample) {
    if (!sample) return;
    const t = sample.t / 1000;
    if (samples.t.length > 0 && samples.t[samples.t.length - 1] >= t) return;
    samples.t.push(t);
    samples.used.push(sample.used);
    samples.limit.push(sample.limit);
    samples.spilled.push(sample.spilled);
    if (samples.t.length > HISTORY) for (const key of Object.keys(samples)) samples[key].shift();
  }

  function redrawChart() {
    const data = [samples.t, samples.used, samples.limit, samples.spilled];
    const width = $('chart').clientWidth || 800;
    if (!chart) {
      chart = new uPlot(
        {
          width,
          height: 200,
          series: [
            {},
            {
              label: 'used',
              points: { show: false },
              stroke: '#2f6fde',
              fill: 'rgba(47,111,222,0.12)',
              value: (u, v) => bytes(v),
            },
            { label: 'limit', points: { show: false }, stroke: '#c0392b', dash: [6, 4], value: (u, v) => bytes(v) },
            { label: 'spilled', points: { show: false }, stroke: '#e08e0b', value: (u, v) => bytes(v) },
          ],
          axes: [{}, { size: 84, values: (u, ticks) => ticks.map(bytes) }],
          scales: { y: { range: (u, min, max) => [0, Math.max(max, 1)] } },
        },
        data,
        $('chart'),
      );
      window.addEventListener('resize', () => chart.setSize({ width: $('chart').clientWidth, height: 200 }));
    } else {
      chart.setData(data);
    }
  }

  function draw(snap) {
    const { status } = snap;
    $('identity').textContent =
      `instance ${status.instanceId} · pid ${status.pid} · ${status.socket} · v${status.version}`;
    push(snap.sample);
    redrawChart();
    const cards = [
      ['memory used', bytes(status.memoryUsage)],
      ['limit', bytes(status.memoryLimit)],
      ['reserved', bytes(status.memoryReserved)],
      ['spilled', `${bytes(status.spilled.bytes)} (${status.spilled.objects})`],
      ['objects', status.objects],
      ['names', status.names],
      ['streams', status.streams],
      ['clients', status.clients],
      ['requests', status.requests],
    ];
    $('summary').innerHTML = cards
      .map(
        ([label, value]) =>
          `<div class="card"><div class="label">${label}</div><div class="value">${escapeHtml(value)}</div></div>`,
      )
      .join('');
    if (snap.objects) drawObjects(snap.objects, snap.at);
    if (snap.names) drawNames(snap.names);
    drawStreams(snap.streams);
    drawInstances(snap.cluster);
    if (snap.errors && snap.errors.length) setState('down', snap.errors[0]);
    else if (socket.readyState === WebSocket.OPEN) setState('live', 'live');
  }

  function range(page) {
    if (page.total === 0) return '0 of 0';
    return `${page.offset + 1}–${Math.min(page.offset + page.limit, page.total)} of ${page.total}`;
  }

  function drawObjects(page, now) {
    $('objects-count').textContent = `(${page.total})`;
    $('objects-range').textContent = range(page);
    rows(
      $('objects'),
      page.objects,
      6,
      (o) => `<tr data-id="${escapeHtml(o.id)}">
      <td class="id">${escapeHtml(o.id)}</td><td>${escapeHtml(o.typename)}</td><td class="num">${bytes(o.nbytes)}</td>
      <td>${o.names.map((n) => `<span class="tag">${escapeHtml(n)}</span>`).join('')}</td>
      <td>${Object.entries(o.labels)
        .map(([k, v]) => `<span class="tag">${escapeHtml(k)}=${escapeHtml(v)}</span>`)
        .join('')}</td>
      <td class="num">${age(o.createdAt, now)}</td></tr>`,
    );
  }

  function drawNames(page) {
    $('names-count').textContent = `(${page.total})`;
    $('names-range').textContent = range(page);
    rows(
      $('names'),
      page.names,
      2,
      (n) => `<tr><td>${escapeHtml(n.name)}</td><td class="id">${escapeHtml(n.id ?? '')}</td></tr>`,
    );
  }

  function drawStreams(streams) {
    $('streams-count').textContent = `(${streams.total})`;
    rows(
      $('streams'),
      streams.streams,
      5,
      (s) => `<tr><td class="id">${escapeHtml(s.id)}</td><td>${escapeHtml(s.typename)}</td>
      <td>${escapeHtml(s.state)}</td><td class="num">${s.queuedChunks} · ${bytes(s.queuedBytes)}</td><td>${s.reading ? 'attached' : ''}</td></tr>`,
    );
  }

  function drawInstances(cluster) {
    $('instances-count').textContent = cluster.clustered ? `(${cluster.instances.length})` : '(no cluster)';
    rows(
      $('instances'),
      cluster.instances,
      5,
      (i) => `<tr><td>${i.instanceId}</td><td>${escapeHtml(i.hostname)}</td>
      <td>${escapeHtml(i.socket)}</td><td>${escapeHtml(i.rpcEndpoint ?? '')}</td>
      <td class="${i.alive ? 'alive' : 'gone'}">${i.alive ? 'alive' : 'gone'}</td></tr>`,
    );
  }

  function pager(kind) {
    const input = $(`${kind}-pattern`);
    let debounce;
    input.addEventListener('input', () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => {
        query[kind].pattern = input.value.trim();
        query[kind].offset = 0;
        ask();
      }, 200);
    });
    $(`${kind}-prev`).addEventListener('click', () => {
      query[kind].offset = Math.max(0, query[kind].offset - PAGE);
      ask();
    });
    $(`${kind}-next`).addEventListener('click', () => {
      query[kind].offset += PAGE;
      ask();
    });
  }

  pager('objects');
  pager('names');
  connect();
})();
