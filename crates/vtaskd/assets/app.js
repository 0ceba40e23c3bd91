// The vtask web view: Tasks, one task, Cluster. Plain JavaScript, no build
// step; served by vtaskd from the binary (crates/vtaskd/src/ui.rs).
//
// Data comes from /ui/api on this node. Live changes arrive as Server-Sent
// Events of the replicated watch: every change carries its revision, which
// is the same on every replica, so a stream that breaks resumes after the
// last revision it delivered (the browser sends Last-Event-ID, or the page
// reopens the stream with from = last + 1) and misses nothing.
//
// The token is sent once, to POST /ui/api/session, which keeps it in an
// HttpOnly cookie that no script can read; it is never put in a URL, and the
// page does not store it anywhere. Requests that change something carry the
// x-vtask-csrf header that the server requires.
'use strict';

const PRIVILEGE_CANCEL = 'Global.CancelTask';
const STATES = ['queued', 'running', 'success', 'error'];

const app = {
  session: null,   // GET /ui/api/session
  live: null,      // the open Live stream of the current view
  timers: [],      // intervals of the current view
  leaderEvents: [], // leader changes seen by this page
  lastLeader: null,
  view: 0,         // increments on every navigation: late answers of an old view are dropped
};

// ---------------------------------------------------------------------------
// DOM helpers (text only: nothing from the server is parsed as HTML)

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  return node;
}

const $ = (selector, root) => (root || document).querySelector(selector);

function banner(text, kind) {
  const b = $('#banner');
  if (!text) { b.hidden = true; b.textContent = ''; return; }
  b.hidden = false;
  b.className = kind || '';
  b.textContent = text;
}

function setLive(mode, text) {
  const live = $('#live');
  live.className = 'live ' + mode;
  live.textContent = text;
}

// ---------------------------------------------------------------------------
// Formatting

// RFC 3339 UTC with microseconds, as `vtask` prints times.
function fmtTime(micros) {
  if (micros === undefined || micros === null) return '';
  const ms = Math.floor(micros / 1000);
  const iso = new Date(ms).toISOString(); // ...T12:34:56.789Z
  const rest = String(((micros % 1000) + 1000) % 1000).padStart(3, '0');
  return iso.slice(0, -1) + rest + 'Z';
}

function fmtDuration(micros) {
  if (micros === undefined || micros === null || micros < 0) return '';
  const s = micros / 1e6;
  if (s < 1) return Math.round(s * 1000) + ' ms';
  if (s < 60) return s.toFixed(1) + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' min ' + Math.floor(s % 60) + ' s';
  const h = Math.floor(m / 60);
  return h + ' h ' + (m % 60) + ' min';
}

function fmtSeconds(seconds) {
  if (!isFinite(seconds)) return '—';
  if (seconds < 1e-3) return (seconds * 1e6).toFixed(0) + ' µs';
  if (seconds < 1) return (seconds * 1e3).toFixed(seconds < 0.01 ? 2 : 1) + ' ms';
  return seconds.toFixed(2) + ' s';
}

function moref(m) {
  return m ? m.type + ':' + m.value : '';
}

function anyValue(v) {
  if (!v) return '';
  const value = v._value;
  if (v._typeName === 'dateTime') return fmtTime(value);
  if (v._typeName === 'ManagedObjectReference') return moref(value);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function initiator(reason) {
  if (!reason) return '';
  switch (reason._typeName) {
    case 'TaskReasonUser': return reason.userName;
    case 'TaskReasonSystem': return 'System';
    case 'TaskReasonAlarm': return 'Alarm ' + reason.alarmName;
    case 'TaskReasonSchedule': return 'Schedule ' + reason.name;
    default: return reason._typeName;
  }
}

function faultText(fault) {
  if (!fault) return '';
  return fault._typeName + (fault.localizedMessage ? ': ' + fault.localizedMessage : '');
}

function details(info) {
  if (info.description) return info.description.message || info.description.key;
  return '';
}

function taskNum(key) {
  const n = /^task-(\d+)$/.exec(key || '');
  return n ? Number(n[1]) : 0;
}

// ---------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, message, fault) {
    super(message);
    this.status = status;
    this.fault = fault;
  }
}

async function api(path, options) {
  const method = (options && options.method) || 'GET';
  const headers = { accept: 'application/json' };
  if (method !== 'GET') headers['x-vtask-csrf'] = '1';
  let body;
  if (options && options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch('/ui/api/' + path, { method, headers, body, credentials: 'same-origin', cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'this node does not answer (' + e.message + ')');
  }
  let data = null;
  try { data = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.message) || response.status + ' ' + response.statusText, data && data.fault);
  }
  return data;
}

function may(privilege) {
  return !!(app.session && app.session.privileges.includes(privilege));
}

// ---------------------------------------------------------------------------
// Live changes: one event stream per view, resumed after its last revision

class Live {
  constructor(params, from, handlers) {
    this.params = params;
    this.last = from - 1;   // the last revision this page has seen
    this.handlers = handlers;
    this.retries = 0;
    this.closed = false;
    this.connect();
  }

  url() {
    const query = new URLSearchParams(this.params);
    query.set('from', String(this.last + 1));
    return '/ui/api/watch?' + query;
  }

  connect() {
    if (this.closed) return;
    const es = this.es = new EventSource(this.url());
    es.onopen = () => {
      this.retries = 0;
      setLive('on', 'live · node ' + app.session.nodeId);
      banner('');
    };
    es.addEventListener('change', (e) => {
      const change = JSON.parse(e.data);
      if (change.kind === 'resync') {
        // The changes asked for went with their removed tasks (retention):
        // load the view again instead of receiving every current task.
        this.close();
        this.handlers.resync();
        return;
      }
      if (change.kind === 'current') return;
      this.last = Math.max(this.last, change.revision);
      if (change.kind !== 'synced') this.handlers.change(change);
    });
    es.addEventListener('failure', (e) => {
      const failure = JSON.parse(e.data);
      es.close();
      this.reconnectLater('the live stream failed: ' + failure.message);
    });
    es.onerror = () => {
      if (this.closed) return;
      if (es.readyState === EventSource.CLOSED) {
        this.reconnectLater('lost the live connection to node ' + app.session.nodeId);
      } else {
        // The browser reconnects by itself, sending Last-Event-ID.
        this.reconnecting('lost the live connection to node ' + app.session.nodeId);
      }
    };
  }

  reconnecting(why) {
    setLive('reconnecting', 'reconnecting…');
    banner(why + ': reconnecting… (updates resume after revision ' + this.last + ', none is missed)');
  }

  reconnectLater(why) {
    if (this.closed) return;
    this.reconnecting(why);
    const delay = Math.min(5000, 500 * 2 ** this.retries++);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.es) this.es.close();
    setLive('off', 'offline');
  }
}

// ---------------------------------------------------------------------------
// Shared pieces

function stateCell(info) {
  const progress = info.state === 'success' ? 100 : (info.progress === undefined ? null : info.progress);
  const label = info.state + (info.cancelled && info.state !== 'error' ? ' (cancel requested)' : '');
  const bar = el('span', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': progress === null ? undefined : progress });
  const fill = el('span');
  fill.style.width = (progress || 0) + '%';
  bar.append(fill);
  return el('div', { class: 'state', 'data-state': info.state, 'data-progress': progress === null ? '' : progress },
    el('span', { class: 's-' + info.state }, label),
    info.state === 'running' || info.state === 'queued' ? [bar, el('span', { class: 'pct' }, progress === null ? '' : progress + '%')] : null);
}

function cancelable(info) {
  return info.cancelable && !info.cancelled && (info.state === 'queued' || info.state === 'running');
}

function cancelButton(info, done) {
  // The privilege check is the service's; the page only hides what would be refused.
  if (!cancelable(info) || !may(PRIVILEGE_CANCEL)) return null;
  return el('button', {
    type: 'button', class: 'danger cancel', 'data-key': info.key,
    onclick: async (e) => {
      const button = e.currentTarget;
      button.disabled = true;
      try {
        const reply = await api('tasks/' + encodeURIComponent(info.key) + '/cancel', { method: 'POST', body: {} });
        done(reply.info);
      } catch (err) {
        button.disabled = false;
        banner('Cancel ' + info.key + ': ' + err.message, 'error');
      }
    },
  }, 'Cancel');
}

function showError(view, err) {
  if (view !== app.view) return;
  const main = $('#view');
  main.replaceChildren();
  if (err.status === 401) {
    loginView(err.message);
    return;
  }
  const nothing = err.status === 403
    ? 'You (' + (app.session.user || 'anonymous') + ') may not see tasks: ' + err.message
    : err.message;
  main.append(el('div', { class: 'panel error-text', id: 'refused', 'data-status': err.status }, nothing));
}

// ---------------------------------------------------------------------------
// Tasks

function parseHashQuery(query) {
  const q = new URLSearchParams(query || '');
  return {
    state: (q.get('state') || '').split(',').filter((s) => STATES.includes(s)),
    entity: q.get('entity') || '',
    initiator: q.get('initiator') || '',
    pageSize: Number(q.get('pageSize')) || 25,
    after: q.get('after') || '',
    back: (q.get('back') || '').split(',').filter(Boolean),
  };
}

function tasksHash(f) {
  const q = new URLSearchParams();
  if (f.state.length) q.set('state', f.state.join(','));
  if (f.entity) q.set('entity', f.entity);
  if (f.initiator) q.set('initiator', f.initiator);
  if (f.pageSize !== 25) q.set('pageSize', String(f.pageSize));
  if (f.after) q.set('after', f.after);
  if (f.back.length) q.set('back', f.back.join(','));
  const s = q.toString();
  return '#/tasks' + (s ? '?' + s : '');
}

async function tasksView(view, query) {
  const f = parseHashQuery(query);
  const main = $('#view');
  const form = el('form', { class: 'filters panel', id: 'filters' },
    el('fieldset', {}, el('legend', {}, 'State'),
      STATES.map((s) => el('label', {}, el('input', { type: 'checkbox', name: 'state', value: s, checked: f.state.includes(s) }), s))),
    el('label', {}, 'Entity (TYPE:VALUE)', el('input', { type: 'text', name: 'entity', value: f.entity, placeholder: 'VirtualMachine:vm-42' })),
    el('label', {}, 'Initiator', el('input', { type: 'text', name: 'initiator', value: f.initiator, placeholder: 'alice,bob' })),
    el('label', {}, 'Page size', el('select', { name: 'pageSize' },
      [25, 50, 100, 500].map((n) => el('option', { value: n, selected: n === f.pageSize }, n)))),
    el('label', {}, 'From key (after)', el('input', { type: 'text', name: 'after', value: f.after, placeholder: 'task-100', size: 10 })),
    el('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = new FormData(form);
    location.hash = tasksHash({
      state: data.getAll('state'), entity: data.get('entity').trim(), initiator: data.get('initiator').trim(),
      pageSize: Number(data.get('pageSize')), after: data.get('after').trim(), back: [],
    });
  });
  const tbody = el('tbody', { id: 'task-rows' });
  const table = el('table', { id: 'tasks' },
    el('thead', {}, el('tr', {},
      ['Task', 'Target', 'Status', 'Details', 'Initiator', 'Queued for', 'Start time', 'Completion time', 'Node', '']
        .map((h) => el('th', {}, h)))),
    tbody);
  const pager = el('div', { class: 'pager', id: 'pager' });
  const footer = el('p', { class: 'muted', id: 'tasks-footer' });
  main.replaceChildren(el('h1', {}, 'Recent tasks'), form, pager, table, footer);

  const params = new URLSearchParams();
  if (f.state.length) params.set('state', f.state.join(','));
  if (f.entity) params.set('entity', f.entity);
  if (f.initiator) params.set('initiator', f.initiator);
  params.set('pageSize', String(f.pageSize));
  if (f.after) params.set('pageToken', f.after);
  let page;
  try {
    page = await api('tasks?' + params);
  } catch (err) {
    showError(view, err);
    return;
  }
  if (view !== app.view) return;

  const rows = new Map(); // key -> {info, tr}
  let nextToken = page.nextPageToken;

  function renderRow(info) {
    const queuedFor = el('td', { class: 'queued-for' });
    const tr = el('tr', { 'data-key': info.key },
      el('td', {}, el('a', { href: '#/task/' + info.key, class: 'task-link' }, info.descriptionId || info.key), el('div', { class: 'muted mono' }, info.key)),
      el('td', {}, info.entityName || moref(info.entity), info.entityName ? el('div', { class: 'muted mono' }, moref(info.entity)) : null),
      el('td', {}, stateCell(info), info.error ? el('div', { class: 'error-text' }, faultText(info.error)) : null),
      el('td', {}, details(info)),
      el('td', { class: 'initiator' }, initiator(info.reason)),
      queuedFor,
      el('td', { class: 'mono' }, fmtTime(info.startTime)),
      el('td', { class: 'mono' }, fmtTime(info.completeTime)),
      el('td', {}, 'node ' + app.session.nodeId),
      el('td', {}, cancelButton(info, (updated) => update(updated, 'updated'))));
    tr._info = info;
    tr._queuedFor = queuedFor;
    refreshQueuedFor(tr);
    return tr;
  }

  function refreshQueuedFor(tr) {
    const info = tr._info;
    const until = info.startTime || info.completeTime || Date.now() * 1000;
    tr._queuedFor.textContent = fmtDuration(until - info.queueTime);
  }

  function matchesState(info) {
    return !f.state.length || f.state.includes(info.state);
  }

  function renderPager() {
    const first = el('button', { type: 'button', id: 'first-page', disabled: !f.after, onclick: () => { location.hash = tasksHash({ ...f, after: '', back: [] }); } }, 'First');
    const prev = el('button', { type: 'button', id: 'prev-page', disabled: !f.after, onclick: () => {
      const back = f.back.slice();
      const after = back.pop() || '';
      location.hash = tasksHash({ ...f, after: after === '-' ? '' : after, back });
    } }, 'Previous');
    const next = el('button', { type: 'button', id: 'next-page', disabled: !nextToken, onclick: () => {
      location.hash = tasksHash({ ...f, after: nextToken, back: [...f.back, f.after || '-'] });
    } }, 'Next');
    const keys = [...rows.keys()];
    const range = keys.length ? keys[0] + ' … ' + keys[keys.length - 1] : 'no tasks';
    pager.replaceChildren(first, prev, next, el('span', { class: 'muted', id: 'page-range' }, range + ' (in key order, ' + f.pageSize + ' a page)'));
  }

  function update(info, kind) {
    const row = rows.get(info.key);
    if (row) {
      const tr = renderRow(info);
      if (kind === 'removed') {
        tr.classList.add('gone');
        tr.title = 'removed: the retention period has passed';
      } else if (!matchesState(info)) {
        tr.classList.add('stale');
        tr.title = 'no longer ' + f.state.join(' or ') + ' (shown until the page is loaded again)';
      }
      row.tr.replaceWith(tr);
      row.tr = tr;
      row.info = info;
      return;
    }
    if (kind === 'removed' || !matchesState(info)) return;
    // A task that now belongs on this page: within its key range, or after
    // its end on the last page. Pages are in key order, so only new keys
    // (or tasks entering the state filter) qualify.
    const n = taskNum(info.key);
    const afterStart = n > taskNum(f.after);
    const keys = [...rows.keys()];
    const lastN = keys.length ? taskNum(keys[keys.length - 1]) : 0;
    const inRange = afterStart && (n < lastN || !nextToken);
    if (!inRange) return;
    if (rows.size >= f.pageSize) {
      if (!nextToken) { nextToken = keys[keys.length - 1]; renderPager(); }
      return;
    }
    const tr = renderRow(info);
    const before = keys.find((k) => taskNum(k) > n);
    if (before) rows.get(before).tr.before(tr); else tbody.append(tr);
    rows.set(info.key, { info, tr });
    const sorted = [...rows.entries()].sort((a, b) => taskNum(a[0]) - taskNum(b[0]));
    rows.clear();
    for (const [k, v] of sorted) rows.set(k, v);
    renderPager();
  }

  for (const info of page.tasks) {
    const tr = renderRow(info);
    tbody.append(tr);
    rows.set(info.key, { info, tr });
  }
  renderPager();
  footer.textContent = 'Read at revision ' + page.revision + ' on node ' + app.session.nodeId + '; changes since then arrive live.';
  app.timers.push(setInterval(() => {
    for (const { tr } of rows.values()) if (tr._info.state === 'queued') refreshQueuedFor(tr);
  }, 1000));

  const watch = {};
  if (f.entity) watch.entity = f.entity;
  if (f.initiator) watch.initiator = f.initiator;
  app.live = new Live(watch, page.revision + 1, {
    change: (change) => update(change.info, change.kind),
    resync: () => route(),
  });
}

// ---------------------------------------------------------------------------
// One task

function field(name, value) {
  return [el('dt', {}, name), el('dd', { 'data-field': name }, value === undefined || value === null || value === '' ? el('span', { class: 'muted' }, '—') : value)];
}

function renderInfo(info) {
  const d = info.description;
  return el('dl', { class: 'fields', id: 'task-fields' },
    field('key', el('span', { class: 'mono' }, info.key)),
    field('task', el('span', { class: 'mono' }, 'Task:' + info.key)),
    field('descriptionId', info.descriptionId),
    field('name', info.name),
    field('description', d ? [d.message || '', ' ', el('span', { class: 'muted mono' }, d.key),
      (d.arg || []).length ? el('div', { class: 'mono' }, d.arg.map((a) => a.key + '=' + anyValue(a.value)).join(', ')) : null] : null),
    field('entity', moref(info.entity)),
    field('entityName', info.entityName),
    field('locked', (info.locked || []).map(moref).join(', ')),
    field('state', stateCell(info)),
    field('cancelled', String(info.cancelled)),
    field('cancelable', String(info.cancelable)),
    field('progress', info.progress === undefined ? null : info.progress + '%'),
    field('progressDetails', (info.progressDetails || []).length ? el('div', { class: 'mono' }, info.progressDetails.map((p) => p.key + '=' + anyValue(p.value)).join(', ')) : null),
    field('reason', initiator(info.reason) + ' (' + (info.reason && info.reason._typeName) + ')'),
    field('queueTime', el('span', { class: 'mono' }, fmtTime(info.queueTime))),
    field('startTime', info.startTime ? el('span', { class: 'mono' }, fmtTime(info.startTime)) : null),
    field('completeTime', info.completeTime ? el('span', { class: 'mono' }, fmtTime(info.completeTime)) : null),
    field('eventChainId', info.eventChainId),
    field('changeTag', info.changeTag),
    field('parentTaskKey', info.parentTaskKey ? el('a', { href: '#/task/' + info.parentTaskKey }, info.parentTaskKey) : null),
    field('rootTaskKey', info.rootTaskKey ? el('a', { href: '#/task/' + info.rootTaskKey }, info.rootTaskKey) : null),
    field('activationId', info.activationId));
}

function renderOutcome(info) {
  if (info.error) {
    return el('div', { class: 'fault', id: 'task-fault' },
      el('strong', {}, info.error._typeName), ': ', info.error.localizedMessage || '',
      el('pre', { class: 'mono' }, JSON.stringify(info.error, null, 2)));
  }
  if (info.state === 'success') {
    return el('div', { class: 'result', id: 'task-result' },
      el('strong', {}, 'Result'), ': ',
      info.result ? [anyValue(info.result), el('span', { class: 'muted' }, ' (' + info.result._typeName + ')')] : el('span', { class: 'muted' }, 'none'));
  }
  return null;
}

function renderHistory(changes) {
  return el('table', { id: 'history' },
    el('thead', {}, el('tr', {}, ['Revision', 'Time', 'Method', 'Who', 'Term', 'Index', 'After'].map((h) => el('th', {}, h)))),
    el('tbody', {}, changes.map((c) => el('tr', { 'data-revision': c.revision },
      el('td', { class: 'num rev' }, c.revision),
      el('td', { class: 'mono time' }, fmtTime(c.time)),
      el('td', { class: 'method' }, c.method),
      el('td', { class: 'actor' }, c.actor || '(vtask)'),
      el('td', { class: 'num term' }, c.term),
      el('td', { class: 'num index' }, c.index),
      el('td', {}, c.kind === 'removed' ? 'removed' : c.info.state + (c.info.progress !== undefined ? ' ' + c.info.progress + '%' : ''))))));
}

async function taskView(view, key) {
  const main = $('#view');
  let info, revision, changes;
  try {
    const [got, history] = await Promise.all([
      api('tasks/' + encodeURIComponent(key)),
      api('tasks/' + encodeURIComponent(key) + '/history'),
    ]);
    ({ info, revision } = got);
    changes = history.changes;
  } catch (err) {
    showError(view, err);
    return;
  }
  if (view !== app.view) return;
  const head = el('div', { id: 'task-head' });
  const outcome = el('div', { id: 'task-outcome' });
  const fields = el('div', { class: 'panel' });
  const history = el('div', { id: 'history-box' });
  main.replaceChildren(
    el('p', {}, el('a', { href: '#/tasks' }, '← Tasks')),
    head, outcome, fields,
    el('h2', {}, 'Change history (D23)'),
    el('p', { class: 'muted' }, 'Every change of the task: who made it, when (the leader\'s clock), and the Raft term and index of its log entry.'),
    history);

  function show(next) {
    info = next;
    head.replaceChildren(el('h1', {}, info.descriptionId, ' ', el('span', { class: 'muted mono' }, info.key)),
      el('p', { id: 'task-actions' }, cancelButton(info, show)));
    outcome.replaceChildren(renderOutcome(info) || '');
    fields.replaceChildren(renderInfo(info));
  }
  show(info);
  history.replaceChildren(renderHistory(changes));

  let pending = null;
  async function refreshHistory() {
    pending = null;
    try {
      const fresh = await api('tasks/' + encodeURIComponent(key) + '/history');
      if (view === app.view) history.replaceChildren(renderHistory(fresh.changes));
    } catch (err) {
      if (view === app.view) banner('history: ' + err.message, 'error');
    }
  }
  app.live = new Live({ task: key }, revision + 1, {
    change: (change) => {
      show(change.info);
      if (!pending) pending = setTimeout(refreshHistory, 100);
    },
    resync: () => route(),
  });
}

// ---------------------------------------------------------------------------
// Cluster

// The stage histograms of /metrics: name -> {buckets: [[le, count]], sum, count}.
function parseHistograms(text) {
  const out = {};
  for (const line of text.split('\n')) {
    let m = /^(vtask_\w+)_bucket\{le="([^"]+)"\} (\d+)/.exec(line);
    if (m) {
      (out[m[1]] ||= { buckets: [], sum: 0, count: 0 }).buckets.push([m[2] === '+Inf' ? Infinity : Number(m[2]), Number(m[3])]);
      continue;
    }
    m = /^(vtask_\w+_seconds)_(sum|count) ([\d.]+)/.exec(line);
    if (m) (out[m[1]] ||= { buckets: [], sum: 0, count: 0 })[m[2]] = Number(m[3]);
  }
  return out;
}

function quantile(h, q) {
  if (!h.count) return NaN;
  const rank = q * h.count;
  for (const [le, cumulative] of h.buckets) if (cumulative >= rank) return le;
  return Infinity;
}

const STAGES = [
  ['vtask_proposal_seconds', 'proposal → outcome (leader)'],
  ['vtask_raft_append_entries_seconds', 'AppendEntries round trip (leader)'],
  ['vtask_raft_append_entries_served_seconds', 'AppendEntries served (follower)'],
  ['vtask_log_sync_seconds', 'WAL fsync'],
  ['vtask_apply_seconds', 'apply'],
];

function histogramChart(name, label, h) {
  const box = el('div', { class: 'chart panel', 'data-histogram': name });
  box.append(el('div', {}, el('strong', {}, label)), el('div', { class: 'muted mono' }, name));
  if (!h || !h.count) {
    box.append(el('p', { class: 'muted' }, 'no samples on this node'));
    return box;
  }
  const counts = h.buckets.map(([le, c], i) => [le, c - (i ? h.buckets[i - 1][1] : 0)]);
  const max = Math.max(1, ...counts.map(([, c]) => c));
  const W = 300, H = 90, base = 74, bw = W / counts.length;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
  counts.forEach(([le, c], i) => {
    const bh = c ? Math.max(1, (c / max) * 64) : 0;
    const rect = svg('rect', { x: i * bw + 1, y: base - bh, width: Math.max(1, bw - 2), height: bh });
    const title = svg('title', {});
    title.textContent = (le === Infinity ? '> last bound' : '≤ ' + fmtSeconds(le)) + ': ' + c;
    rect.append(title);
    chart.append(rect);
    if (i % Math.ceil(counts.length / 6) === 0) {
      const t = svg('text', { x: i * bw, y: H - 4 });
      t.textContent = le === Infinity ? '∞' : fmtSeconds(le);
      chart.append(t);
    }
  });
  box.append(chart, el('div', { class: 'muted' },
    h.count + ' samples · mean ' + fmtSeconds(h.sum / h.count) + ' · p50 ≤ ' + fmtSeconds(quantile(h, 0.5)) + ' · p99 ≤ ' + fmtSeconds(quantile(h, 0.99))));
  return box;
}

function noteLeader(status) {
  const now = { leaderId: status.leaderId, term: status.term };
  const last = app.lastLeader;
  if (!last || last.leaderId !== now.leaderId || last.term !== now.term) {
    app.leaderEvents.unshift({
      at: new Date().toISOString(), term: now.term, leaderId: now.leaderId,
      previous: last ? last.leaderId : undefined, first: !last,
    });
    app.leaderEvents.length = Math.min(app.leaderEvents.length, 50);
    app.lastLeader = now;
  }
  $('#node-info').textContent = 'node ' + status.nodeId + ' · leader ' + (status.leaderId ?? 'none') + ' · term ' + status.term;
}

async function pollLeader() {
  try {
    noteLeader(await api('cluster'));
  } catch (err) { /* the cluster view says so; the header keeps its last state */ }
}

async function clusterView(view) {
  const main = $('#view');
  const summary = el('div', { class: 'panel', id: 'cluster-summary' });
  const members = el('div', { id: 'members-box' });
  const events = el('ol', { class: 'events', id: 'leader-events' });
  const charts = el('div', { class: 'charts', id: 'charts' });
  const digest = el('span', { class: 'mono', id: 'digest' }, '…');
  main.replaceChildren(el('h1', {}, 'Cluster'), summary,
    el('h2', {}, 'Members'), members,
    el('h2', {}, 'Leader changes seen by this page'), events,
    el('h2', {}, 'Write path stage latencies (this node\'s /metrics)'), charts);
  let digestAt = '';

  async function poll() {
    let status;
    try {
      status = await api('cluster');
    } catch (err) {
      if (view === app.view) {
        banner('cluster status: ' + err.message + ' (trying again every second)', 'error');
        setLive('reconnecting', 'reconnecting…');
      }
      return;
    }
    if (view !== app.view) return;
    banner('');
    setLive('on', 'polling · node ' + status.nodeId);
    noteLeader(status);
    summary.replaceChildren(el('dl', { class: 'fields' },
      field('this node', 'node ' + status.nodeId),
      field('leader', status.leaderId === null || status.leaderId === undefined ? 'none known' : 'node ' + status.leaderId),
      field('term', status.term),
      field('last log index', status.lastLogIndex),
      field('committed index', status.committedIndex),
      field('applied index', status.appliedIndex),
      field('lag (log − applied)', status.lastLogIndex - status.appliedIndex),
      field('state digest', [digest, el('span', { class: 'muted' }, digestAt ? ' as of ' + digestAt : '')])));
    members.replaceChildren(el('table', { id: 'members' },
      el('thead', {}, el('tr', {}, ['Node', 'Address', 'Role', 'Matched index', 'Lag (entries)'].map((h) => el('th', {}, h)))),
      el('tbody', {}, status.members.map((m) => el('tr', { 'data-node': m.nodeId, 'data-role': m.role },
        el('td', {}, 'node ' + m.nodeId + (m.nodeId === status.nodeId ? ' (this page)' : '')),
        el('td', { class: 'mono' }, m.address),
        el('td', {}, m.role),
        el('td', { class: 'num' }, m.matchedIndex ?? '—'),
        el('td', { class: 'num' }, m.lag ?? (m.role === 'leader' ? 0 : '— (known on the leader)')))))));
    events.replaceChildren(...app.leaderEvents.map((e) => el('li', { 'data-term': e.term, 'data-leader': e.leaderId ?? '' },
      e.at + ': term ' + e.term + ', leader ' + (e.leaderId ?? 'none') + (e.first ? ' (page opened)' : ' (was ' + (e.previous ?? 'none') + ')'))));
  }

  async function pollDigest() {
    try {
      const status = await api('cluster?digest=1');
      digest.textContent = status.stateDigest || '';
      digestAt = new Date().toISOString();
    } catch (err) { digest.textContent = 'unavailable'; }
  }

  async function pollMetrics() {
    try {
      const response = await fetch('/metrics', { cache: 'no-store', credentials: 'same-origin' });
      const histograms = parseHistograms(await response.text());
      if (view !== app.view) return;
      charts.replaceChildren(...STAGES.map(([name, label]) => histogramChart(name, label, histograms[name])));
    } catch (err) { /* shown as stale */ }
  }

  await Promise.all([pollDigest(), poll(), pollMetrics()]);
  app.timers.push(setInterval(poll, 1000), setInterval(pollMetrics, 5000), setInterval(pollDigest, 15000));
}

// ---------------------------------------------------------------------------
// Session

function loginView(message) {
  const main = $('#view');
  const token = el('input', { type: 'password', name: 'token', id: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const error = el('p', { class: 'error-text', id: 'login-error' }, message && message !== 'unknown token' ? message : '');
  const form = el('form', { class: 'panel login', id: 'login' },
    el('h1', {}, 'Sign in to node ' + app.session.nodeId),
    el('label', { for: 'token' }, 'Bearer token'), token,
    el('button', { type: 'submit' }, 'Sign in'), error,
    el('p', { class: 'muted' }, 'The token is kept in an HttpOnly session cookie for this site, never in the URL.' +
      (app.session.tls ? '' : ' This node serves plain HTTP: use this only on a trusted network.')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      app.session = await api('session', { method: 'POST', body: { token: token.value } });
      token.value = '';
      renderWho();
      route();
    } catch (err) {
      token.value = '';
      error.textContent = err.message;
    }
  });
  main.replaceChildren(form);
  token.focus();
}

function renderWho() {
  const s = app.session;
  $('#who').textContent = s.authenticated ? s.user + (s.authRequired ? '' : ' (insecure node: no token needed)') : '';
  $('#who').title = s.privileges.join(', ');
  $('#logout').hidden = !(s.authRequired && s.authenticated);
}

// ---------------------------------------------------------------------------
// Navigation

function leaveView() {
  app.view += 1;
  if (app.live) app.live.close();
  app.live = null;
  for (const t of app.timers) clearInterval(t);
  app.timers = [];
  banner('');
}

function route() {
  leaveView();
  const view = app.view;
  const hash = location.hash || '#/tasks';
  const [path, query] = hash.slice(1).split('?');
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', hash.startsWith(a.getAttribute('href')));
  if (app.session.authRequired && !app.session.authenticated) {
    loginView();
    return;
  }
  app.timers.push(setInterval(pollLeader, 3000));
  pollLeader();
  const task = /^\/task\/(.+)$/.exec(path);
  if (task) taskView(view, decodeURIComponent(task[1]));
  else if (path === '/cluster') clusterView(view);
  else tasksView(view, query);
}

async function start() {
  try {
    app.session = await api('session');
  } catch (err) {
    $('#view').replaceChildren(el('p', { class: 'error-text' }, err.message));
    return;
  }
  renderWho();
  $('#logout').addEventListener('click', async () => {
    try {
      app.session = await api('session', { method: 'DELETE' });
    } catch (err) { banner(err.message, 'error'); }
    renderWho();
    route();
  });
  window.addEventListener('hashchange', route);
  route();
}

document.addEventListener('DOMContentLoaded', start);
