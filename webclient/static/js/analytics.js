// The console's analytics page (#analytics), for supervisors and admins: the
// figures of GET /v1/analytics over a date range, drawn as inline SVG by the
// small chart code below (no libraries; nothing inline that the CSP forbids).
// Every chart is an image with a title and a description, followed by the
// same figures as a table for screen readers and for copying.

import { $, el } from './ui.js';

const SVG = 'http://www.w3.org/2000/svg';
const DAY_MS = 24 * 60 * 60 * 1000;
const W = 640;
const H = 220;
const PAD = {
  left: 48, right: 12, top: 12, bottom: 36,
};

function svgEl(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, String(v));
  for (const c of children) if (c) node.append(c);
  return node;
}

let chartSeq = 0;

/** An SVG chart frame with its accessible name and description. */
function frame(title, desc, testid) {
  chartSeq += 1;
  const id = `chart-${chartSeq}`;
  const svg = svgEl('svg', {
    viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${id}-title ${id}-desc`, class: 'chart', 'data-testid': testid,
  });
  const t = svgEl('title', { id: `${id}-title` });
  t.textContent = title;
  const d = svgEl('desc', { id: `${id}-desc` });
  d.textContent = desc;
  svg.append(t, d);
  return svg;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= v) return m * mag;
  return 10 * mag;
}

function fmt(v, digits = 1) {
  if (!Number.isFinite(v)) return '–';
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

/** Y axis with four gridlines from 0 to max. */
function yAxis(svg, max, unit) {
  const plotH = H - PAD.top - PAD.bottom;
  for (let i = 0; i <= 4; i += 1) {
    const y = PAD.top + plotH - (plotH * i) / 4;
    svg.append(svgEl('line', {
      x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: 'chart-grid',
    }));
    const label = svgEl('text', {
      x: PAD.left - 6, y: y + 4, class: 'chart-label', 'text-anchor': 'end',
    });
    label.textContent = `${fmt((max * i) / 4)}${i === 4 && unit ? ` ${unit}` : ''}`;
    svg.append(label);
  }
}

function xLabel(svg, x, text) {
  const t = svgEl('text', {
    x, y: H - PAD.bottom + 16, class: 'chart-label', 'text-anchor': 'middle',
  });
  t.textContent = text;
  svg.append(t);
}

/** A table with a caption, the fallback of a chart. */
function table(caption, head, rows, testid) {
  return el('table', { class: 'data-table', 'data-testid': testid },
    el('caption', { text: caption }),
    el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c, i) => (i === 0
      ? el('th', { scope: 'row', text: String(c) }) : el('td', { text: String(c) })))))));
}

function figureBlock(heading, svg, fallback) {
  return el('figure', { class: 'chart-figure' },
    el('figcaption', { class: 'chart-caption', text: heading }),
    svg,
    el('details', { class: 'chart-table' }, el('summary', { text: 'Show as a table' }), fallback));
}

/** The days of [from, to) as YYYY-MM-DD, UTC. */
export function daysOf(from, to) {
  const out = [];
  for (let t = Date.parse(from); t < Date.parse(to); t += DAY_MS) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

/** Bars over the days of the range: one bar per day with data (value > 0). */
export function dayBars(days, values, { title, desc, unit = '', testid }) {
  const svg = frame(title, desc, testid);
  const max = niceMax(Math.max(0, ...values.values()));
  yAxis(svg, max, unit);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, days.length);
  const barW = Math.max(2, step * 0.7);
  days.forEach((day, i) => {
    const v = values.get(day) ?? 0;
    const x = PAD.left + i * step + (step - barW) / 2;
    if (v > 0) {
      const h = (plotH * v) / max;
      const bar = svgEl('rect', {
        x, y: PAD.top + plotH - h, width: barW, height: h, class: 'chart-bar', 'data-date': day, 'data-value': v,
      });
      const tip = svgEl('title');
      tip.textContent = `${day}: ${fmt(v)}${unit ? ` ${unit}` : ''}`;
      bar.append(tip);
      svg.append(bar);
    }
    if (i === 0 || i === days.length - 1 || (days.length > 2 && i === Math.floor(days.length / 2))) {
      xLabel(svg, x + barW / 2, day.slice(5));
    }
  });
  return svg;
}

/** Lines over the days of the range; a series skips days without a value. */
export function dayLines(days, series, { title, desc, unit = '', testid }) {
  const svg = frame(title, desc, testid);
  const all = series.flatMap((s) => [...s.values.values()]);
  const max = niceMax(Math.max(0, ...all));
  yAxis(svg, max, unit);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, days.length);
  const xOf = (i) => PAD.left + i * step + step / 2;
  series.forEach((s, n) => {
    const points = [];
    days.forEach((day, i) => {
      if (!s.values.has(day)) return;
      const y = PAD.top + plotH - (plotH * s.values.get(day)) / max;
      points.push([xOf(i), y, day, s.values.get(day)]);
    });
    if (points.length > 1) {
      svg.append(svgEl('polyline', {
        points: points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' '), class: `chart-line series-${n}`, fill: 'none',
      }));
    }
    for (const [x, y, day, v] of points) {
      const dot = svgEl('circle', {
        cx: x, cy: y, r: 3.5, class: `chart-dot series-${n}`, 'data-date': day,
      });
      const tip = svgEl('title');
      tip.textContent = `${s.name} ${day}: ${fmt(v)}${unit ? ` ${unit}` : ''}`;
      dot.append(tip);
      svg.append(dot);
    }
    const legend = svgEl('text', { x: PAD.left + 8 + n * 150, y: PAD.top + 12, class: `chart-legend series-${n}` });
    legend.textContent = `● ${s.name}`;
    svg.append(legend);
  });
  [0, days.length - 1].forEach((i) => { if (days[i]) xLabel(svg, xOf(i), days[i].slice(5)); });
  return svg;
}

/** Horizontal bars for a few named values. */
export function namedBars(items, { title, desc, unit = '', testid }) {
  const svg = frame(title, desc, testid);
  const max = niceMax(Math.max(0, ...items.map((i) => i.value)));
  const rowH = (H - PAD.top - PAD.bottom) / Math.max(1, items.length);
  const left = 110;
  items.forEach((item, i) => {
    const y = PAD.top + i * rowH + rowH * 0.15;
    const w = ((W - left - 60) * item.value) / max;
    const label = svgEl('text', {
      x: left - 8, y: y + rowH * 0.45, class: 'chart-label', 'text-anchor': 'end',
    });
    label.textContent = item.label;
    const bar = svgEl('rect', {
      x: left, y, width: Math.max(0, w), height: rowH * 0.6, class: `chart-hbar ${item.cls ?? ''}`,
    });
    const value = svgEl('text', { x: left + w + 6, y: y + rowH * 0.45, class: 'chart-label' });
    value.textContent = `${fmt(item.value)}${unit ? ` ${unit}` : ''}`;
    svg.append(label, bar, value);
  });
  return svg;
}

const minutes = (s) => (Number.isFinite(s) ? s / 60 : NaN);

/** Draws the whole report into the page. */
export function renderReport(rep, root) {
  const days = daysOf(rep.from, rep.to);
  const perDay = new Map((rep.sessions_per_day ?? []).map((d) => [d.date, d.sessions]));
  const waitMedian = new Map((rep.waiting_per_day ?? []).map((d) => [d.date, minutes(d.median)]));
  const waitP90 = new Map((rep.waiting_per_day ?? []).map((d) => [d.date, minutes(d.p90)]));
  const q = rep.quality ?? {};
  const qDays = Array.isArray(q.per_day) ? q.per_day : [];
  const rttMedian = new Map(qDays.filter((d) => d.rtt_ms?.count).map((d) => [d.date, d.rtt_ms.median]));
  const rttP90 = new Map(qDays.filter((d) => d.rtt_ms?.count).map((d) => [d.date, d.rtt_ms.p90]));
  const lossMean = new Map(qDays.filter((d) => d.loss_pct?.count).map((d) => [d.date, d.loss_pct.mean]));
  const c = rep.customers ?? {};
  const dur = rep.duration_seconds ?? {};
  const withData = [...perDay.values()].filter((v) => v > 0).length;

  const summary = el('dl', { class: 'analytics-summary', 'data-testid': 'analytics-summary' },
    el('dt', { text: 'Sessions' }), el('dd', { text: String(rep.sessions ?? 0), 'data-testid': 'analytics-sessions' }),
    el('dt', { text: 'Still open' }), el('dd', { text: String(rep.sessions_still_open ?? 0) }),
    el('dt', { text: 'Median wait' }), el('dd', { text: `${fmt(minutes(rep.waiting_seconds?.median))} min` }),
    el('dt', { text: 'Median round trip' }), el('dd', { text: q.overall?.rtt_ms?.count ? `${fmt(q.overall.rtt_ms.median)} ms` : '–' }));

  const blocks = [
    figureBlock('Sessions per day', dayBars(days, perDay, {
      title: 'Sessions per day',
      desc: `${rep.sessions ?? 0} sessions on ${withData} of ${days.length} days, from ${days[0] ?? ''} to ${days[days.length - 1] ?? ''}.`,
      testid: 'chart-sessions',
    }), table('Sessions per day', ['Day', 'Sessions'], days.filter((d) => perDay.get(d) > 0).map((d) => [d, perDay.get(d)]), 'table-sessions')),
    figureBlock('Waiting time (minutes)', dayLines(days, [
      { name: 'median', values: waitMedian }, { name: 'p90', values: waitP90 }], {
      title: 'Waiting time per day, median and 90th percentile', desc: 'Minutes admitted customers waited, by day.', unit: 'min', testid: 'chart-waiting',
    }), table('Waiting time per day (minutes)', ['Day', 'Median', 'p90', 'Customers'],
      (rep.waiting_per_day ?? []).map((d) => [d.date, fmt(minutes(d.median)), fmt(minutes(d.p90)), d.count]), 'table-waiting')),
    figureBlock('Customer outcomes', namedBars([
      { label: 'Admitted', value: c.admitted ?? 0, cls: 'good' },
      { label: 'Denied', value: c.denied ?? 0, cls: 'bad' },
      { label: 'Abandoned', value: c.abandoned ?? 0, cls: 'warn' },
      { label: 'Waiting now', value: c.waiting ?? 0 },
    ], { title: 'Customer outcomes', desc: `${c.admitted ?? 0} admitted, ${c.denied ?? 0} denied, ${c.abandoned ?? 0} abandoned.`, testid: 'chart-outcomes' }),
    table('Customer outcomes', ['Outcome', 'Customers'], [['Admitted', c.admitted ?? 0], ['Denied', c.denied ?? 0],
      ['Abandoned', c.abandoned ?? 0], ['Waiting now', c.waiting ?? 0]], 'table-outcomes')),
    figureBlock('Session duration (minutes)', namedBars([
      { label: 'Median', value: minutes(dur.median) || 0 }, { label: '90th percentile', value: minutes(dur.p90) || 0 },
      { label: 'Longest', value: minutes(dur.max) || 0 }], {
      title: 'Session duration', desc: `Over ${dur.count ?? 0} ended sessions.`, unit: 'min', testid: 'chart-duration',
    }), table('Session duration (minutes)', ['Figure', 'Minutes'], [['Median', fmt(minutes(dur.median))],
      ['90th percentile', fmt(minutes(dur.p90))], ['Longest', fmt(minutes(dur.max))], ['Sessions', dur.count ?? 0]], 'table-duration')),
    figureBlock('Call quality: round trip (ms)', dayLines(days, [
      { name: 'median', values: rttMedian }, { name: 'p90', values: rttP90 }], {
      title: 'Call quality per day: round trip time, median and 90th percentile',
      desc: `Round trip in milliseconds over ${q.overall?.samples ?? 0} quality samples.`, unit: 'ms', testid: 'chart-quality',
    }), table('Call quality per day', ['Day', 'Sessions', 'RTT median (ms)', 'RTT p90 (ms)', 'Jitter median (ms)', 'Loss mean (%)', 'Receive avg (kbps)'],
      qDays.map((d) => [d.date, d.sessions, fmt(d.rtt_ms?.median), fmt(d.rtt_ms?.p90), fmt(d.jitter_ms?.median),
        fmt(lossMean.get(d.date), 2), fmt(d.receive_kbps?.mean)]), 'table-quality')),
  ];

  const quality = new Map((q.per_specialist ?? []).map((s) => [s.specialist_id, s]));
  const specialists = table('Per specialist', ['Specialist', 'Sessions', 'Median in call (min)', 'Median round trip (ms)', 'Mean loss (%)'],
    (rep.per_specialist ?? []).map((s) => {
      const sq = quality.get(s.specialist_id);
      return [s.name || s.specialist_id, s.sessions, fmt(minutes(s.in_call_seconds?.median)),
        sq?.rtt_ms?.count ? fmt(sq.rtt_ms.median) : '–', sq?.loss_pct?.count ? fmt(sq.loss_pct.mean, 2) : '–'];
    }), 'table-specialists');

  root.replaceChildren(summary, el('div', { class: 'chart-grid-layout' }, ...blocks),
    el('h2', { text: 'Per specialist' }), specialists);
}

function dateInput(d) { return d.toISOString().slice(0, 10); }

/** The analytics page: wire the range form once; show() loads the report. */
export class AnalyticsPage {
  #api;
  #loading = 0;

  constructor({ api }) {
    this.#api = api;
    $('analytics-range').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.load();
    });
  }

  show() {
    if (!$('analytics-from').value || !$('analytics-to').value) {
      const today = new Date(`${dateInput(new Date())}T00:00:00Z`);
      $('analytics-to').value = dateInput(today);
      $('analytics-from').value = dateInput(new Date(today.getTime() - 29 * DAY_MS));
    }
    this.load();
  }

  async load() {
    const from = $('analytics-from').value;
    const to = $('analytics-to').value;
    const error = $('analytics-error');
    const root = $('analytics-content');
    error.hidden = true;
    if (!from || !to || from > to) {
      error.textContent = 'Choose a start date on or before the end date.';
      error.hidden = false;
      return;
    }
    const end = new Date(Date.parse(`${to}T00:00:00Z`) + DAY_MS).toISOString();
    const seq = ++this.#loading;
    root.setAttribute('aria-busy', 'true');
    try {
      const rep = await this.#api('GET', `/v1/analytics?from=${encodeURIComponent(`${from}T00:00:00Z`)}&to=${encodeURIComponent(end)}`);
      if (seq !== this.#loading) return;
      renderReport(rep, root);
      root.dataset.loaded = 'true';
    } catch (err) {
      if (seq !== this.#loading) return;
      root.replaceChildren();
      delete root.dataset.loaded;
      error.textContent = err.status === 403
        ? 'Analytics are for supervisors and administrators.'
        : `The analytics could not be loaded: ${err.message}`;
      error.dataset.status = String(err.status ?? '');
      error.hidden = false;
    } finally {
      if (seq === this.#loading) root.removeAttribute('aria-busy');
    }
  }
}
