/* bridge portfolio dashboard: figures and SVG charts from the items embedded in the page.
 *
 * The figures mirror bridge.kpi.portfolio.portfolio() exactly — ratios of sums, the same
 * items counted — so the unfiltered page says what `bridge report -f json` says, and a
 * filtered one what the report says of the same items. Every ticket-supplied string is put
 * into the page as a text node or an attribute value (never parsed as markup), and a link
 * is made only from an http(s) URL.
 */
(() => {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";
  const DATA = JSON.parse(document.getElementById("bridge-data").textContent);
  const META = DATA.meta;
  const ROWS = DATA.items;
  const NONE = META.none;
  const WORK_TYPES = ["project", "service", "unclassified"];
  const FILTERS = ["source", "project", "service"];
  const WIDTH = 560; // viewBox units; charts scale to their box, text with them
  const WIDE = 1200; // the trend spans the page
  const DAY = 86400000;

  // ---- figures (bridge.kpi.portfolio) ------------------------------------------------

  const ratio = (numerator, denominator) => (denominator ? numerator / denominator : null);

  /** A count's total (exact for integers). */
  function sum(values) {
    let total = 0;
    for (const value of values) total += value;
    return total;
  }

  /** The correctly rounded sum of floats: Python's math.fsum (Shewchuk's partials with its
   * half-even correction), which the report sums money and values with; a plain running sum
   * would differ from the report in the last digits. */
  function fsum(values) {
    const partials = [];
    for (let x of values) {
      let i = 0;
      for (let y of partials) {
        if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
        const hi = x + y;
        const lo = y - (hi - x);
        if (lo) partials[i++] = lo;
        x = hi;
      }
      partials.length = i;
      partials.push(x);
    }
    let n = partials.length;
    let hi = 0;
    if (n > 0) {
      let lo = 0;
      hi = partials[--n];
      while (n > 0) {
        const x = hi;
        const y = partials[--n];
        hi = x + y;
        lo = y - (hi - x);
        if (lo) break;
      }
      if (n > 0 && ((lo < 0 && partials[n - 1] < 0) || (lo > 0 && partials[n - 1] > 0))) {
        const y = lo * 2;
        const x = hi + y;
        if (y === x - hi) hi = x;
      }
    }
    return hi;
  }

  /** Σ a and Σ b over the rows that have both, and how many have; null when none has
   * (portfolio._sums). */
  function sums(rows, a, b) {
    const pairs = rows.filter((r) => r[a] !== null && r[b] !== null);
    if (!pairs.length) return null;
    return [fsum(pairs.map((r) => r[a])), fsum(pairs.map((r) => r[b])), pairs.length];
  }

  /** The Wilson score interval in percent (bridge.kpi.portfolio.wilson). */
  function wilson(successes, n) {
    if (n <= 0) return null;
    const z = META.wilson_z;
    const p = successes / n;
    const z2 = z * z;
    const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
    const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
    return [100 * Math.max(0, centre - half), 100 * Math.min(1, centre + half)];
  }

  /** A group's figures, as bridge.kpi.portfolio._figures computes them. */
  function figures(rows) {
    const mix = { project: 0, service: 0, unclassified: 0 };
    for (const r of rows) mix[r.work_type] = (mix[r.work_type] || 0) + 1;
    const ratings = rows.filter((r) => r.csat !== null).map((r) => r.csat);
    const top2 = ratings.filter((v) => v >= 4).length;
    const completed = rows.flatMap((r) => r.sla_completed);
    const met = completed.filter((breached) => !breached).length;
    const services = rows.filter((r) => r.work_type === "service");
    const part = (field) => {
      const values = services.filter((r) => r[field] !== null).map((r) => r[field]);
      return values.length ? fsum(values) : null;
    };
    const evPv = sums(rows, "ev", "pv");
    const evAc = sums(rows, "ev", "ac");
    return {
      items: rows.length,
      mix,
      csat_top2_pct: ratio(100 * top2, ratings.length),
      csat_mean: ratio(fsum(ratings), ratings.length),
      csat_n: ratings.length,
      csat_top2_ci: wilson(top2, ratings.length),
      sla_attainment_pct: ratio(100 * met, completed.length),
      sla_cycles: completed.length,
      sla_items: rows.filter((r) => r.sla_completed.length).length,
      sla_met: met,
      sla_breached: completed.length - met,
      tco_total: part("tco_total"),
      tco_labour: part("tco_labour"),
      tco_other: part("tco_other"),
      spi: evPv ? ratio(evPv[0], evPv[1]) : null,
      cpi: evAc ? ratio(evAc[0], evAc[1]) : null,
      spi_items: evPv ? evPv[2] : 0,
      cpi_items: evAc ? evAc[2] : 0,
    };
  }

  /** [name, rows] per value of a row field, sorted by name as Python's sorted() does. */
  function groupBy(rows, field) {
    const groups = new Map();
    for (const r of rows) {
      const name = r[field];
      if (!groups.has(name)) groups.set(name, []);
      groups.get(name).push(r);
    }
    return [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  // ---- formatting ------------------------------------------------------------------

  const fmt = (value, digits) =>
    value === null || value === undefined
      ? "—"
      : value.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const pct = (value) => (value === null ? "—" : `${fmt(value, 1)} %`);
  const money = (value) =>
    value === null ? "—" : fmt(value, 0) + (META.currency ? ` ${META.currency}` : "");
  const count = (value) => fmt(value, 0);

  // ---- DOM -------------------------------------------------------------------------

  /** An HTML element; string children become text nodes, never markup. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** A link to the item's ticket (http/https only: the server drops any other URL). */
  function ticket(row) {
    if (row.url && /^https?:\/\//i.test(row.url)) {
      return el("a", { href: row.url, target: "_blank", rel: "noopener noreferrer" }, row.key);
    }
    return el("span", {}, row.key);
  }

  /** A numeric cell that carries its exact value for whoever checks the figures. */
  function num(value, text, name) {
    return el("td", { class: "num", "data-figure": name, "data-value": JSON.stringify(value ?? null) }, text);
  }

  function table(headers, rows, total) {
    const head = el("tr", {}, headers.map((h, i) => el("th", { class: i ? "num" : null }, h)));
    const body = rows.map(([name, cells]) => el("tr", { "data-group": name }, el("td", {}, name), cells));
    if (total) body.push(el("tr", { class: "total", "data-group": "" }, el("td", {}, total[0]), total[1]));
    return el("table", {}, el("thead", {}, head), el("tbody", {}, body));
  }

  function legend(series) {
    return el(
      "div",
      { class: "legend" },
      series.map(([key, label]) => el("span", {}, el("span", { class: `swatch ${key}` }), label)),
    );
  }

  function pair(name, plot, numbers) {
    return el(
      "div",
      { class: "pair" },
      el("div", { class: "plot", "data-chart": name }, plot),
      el("div", { class: "numbers" }, numbers),
    );
  }

  // ---- charts ----------------------------------------------------------------------

  function niceStep(span, wanted) {
    const raw = span / wanted;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const f = raw / magnitude;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude;
  }

  function scale(lo, hi, wanted) {
    if (!(hi > lo)) hi = lo + 1;
    const step = niceStep(hi - lo, wanted);
    const start = Math.floor(lo / step) * step;
    const end = Math.ceil(hi / step) * step;
    const ticks = [];
    for (let v = start; v <= end + step / 1e6; v += step) ticks.push(Number(v.toFixed(10)));
    return { lo: start, hi: end, ticks };
  }

  function chart(height, label, width = WIDTH) {
    return svgEl("svg", {
      class: "chart",
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": label,
      preserveAspectRatio: "xMinYMin meet",
    });
  }

  function empty(label) {
    const svg = chart(40, label);
    svg.append(svgEl("text", { class: "empty", x: 8, y: 24 }, "No data for this selection"));
    return svg;
  }

  const clip = (text, chars) => (text.length > chars ? `${text.slice(0, chars - 1)}…` : text);

  /** Horizontal bars, stacked by series; optional whiskers (an interval per bar). */
  function hbars({ label, groups, domain, format, whiskers }) {
    const totals = groups.map((g) => sum(g.parts.map((p) => p.value)));
    if (!groups.length || !(Math.max(...totals) > 0 || whiskers)) return empty(label);
    const labelChars = Math.min(26, Math.max(...groups.map((g) => g.label.length)));
    const left = Math.max(40, labelChars * 6.2 + 10);
    const right = 96; // room for the value written after the bar
    const rowHeight = 20;
    const top = 6;
    const height = top + groups.length * rowHeight + 24;
    const axis = scale(0, domain ?? Math.max(...totals), 5);
    const x = (v) => left + ((WIDTH - left - right) * (v - axis.lo)) / (axis.hi - axis.lo);
    const svg = chart(height, label);
    const bottom = top + groups.length * rowHeight;
    for (const t of axis.ticks) {
      svg.append(svgEl("line", { class: "axis", x1: x(t), x2: x(t), y1: top, y2: bottom }));
      svg.append(svgEl("text", { class: "tick", x: x(t), y: bottom + 14, "text-anchor": "middle" }, format(t)));
    }
    groups.forEach((g, i) => {
      const y = top + i * rowHeight;
      const name = svgEl("text", { x: left - 6, y: y + rowHeight / 2 + 4, "text-anchor": "end" }, clip(g.label, 26));
      name.append(svgEl("title", {}, g.label));
      svg.append(name);
      let start = 0;
      for (const part of g.parts) {
        if (!(part.value > 0)) continue;
        const rect = svgEl("rect", {
          class: `mark s-${part.series}`,
          x: x(start),
          y: y + 3,
          width: Math.max(0.5, x(start + part.value) - x(start)),
          height: rowHeight - 6,
        });
        rect.append(svgEl("title", {}, `${g.label}: ${part.title}`));
        svg.append(rect);
        start += part.value;
      }
      if (whiskers && g.interval) {
        const [lo, hi] = g.interval;
        const mid = y + rowHeight / 2;
        const line = svgEl("path", {
          class: "mark whisker",
          d: `M${x(lo)},${mid}H${x(hi)}M${x(lo)},${mid - 5}V${mid + 5}M${x(hi)},${mid - 5}V${mid + 5}`,
        });
        line.append(svgEl("title", {}, `${g.label}: 95 % CI ${pct(lo)} – ${pct(hi)}`));
        svg.append(line);
      }
      const end = whiskers && g.interval ? Math.max(start, g.interval[1]) : start;
      svg.append(svgEl("text", { x: x(end) + 4, y: y + rowHeight / 2 + 4 }, g.text));
    });
    return svg;
  }

  /** Vertical bars, one per series side by side in each bin. */
  function vbars({ label, bins, series, format, width = WIDTH }) {
    const values = bins.flatMap((b) => b.values);
    if (!bins.length || !(Math.max(...values) > 0)) return empty(label);
    const left = 40;
    const top = 8;
    const plotHeight = 150;
    const height = top + plotHeight + 34;
    const axis = scale(0, Math.max(...values), 4);
    const band = (width - left - 8) / bins.length;
    const barWidth = Math.max(1, (band * 0.8) / series.length);
    const y = (v) => top + plotHeight - (plotHeight * v) / axis.hi;
    const svg = chart(height, label, width);
    for (const t of axis.ticks) {
      svg.append(svgEl("line", { class: "axis", x1: left, x2: width - 8, y1: y(t), y2: y(t) }));
      svg.append(svgEl("text", { class: "tick", x: left - 4, y: y(t) + 4, "text-anchor": "end" }, format(t)));
    }
    const every = Math.ceil(bins.length / Math.floor(width / 70));
    bins.forEach((b, i) => {
      const x0 = left + i * band + band * 0.1;
      b.values.forEach((v, s) => {
        if (!(v > 0)) return;
        const rect = svgEl("rect", {
          class: `mark s-${b.classes ? b.classes[s] : series[s][0]}`,
          x: x0 + s * barWidth,
          y: y(v),
          width: barWidth,
          height: top + plotHeight - y(v),
        });
        rect.append(svgEl("title", {}, `${b.label}: ${format(v)} ${series[s][1]}`));
        svg.append(rect);
      });
      if (i % every === 0) {
        svg.append(
          svgEl("text", { class: "tick", x: left + i * band + band / 2, y: top + plotHeight + 14, "text-anchor": "middle" }, b.label),
        );
      }
    });
    return svg;
  }

  /** A line of percentages over bins (gaps where a bin has no value), with points. */
  function line({ label, points, width = WIDTH }) {
    if (!points.some((p) => p.value !== null)) return empty(label);
    const left = 40;
    const top = 8;
    const plotHeight = 120;
    const svg = chart(top + plotHeight + 34, label, width);
    const band = (width - left - 8) / points.length;
    const x = (i) => left + i * band + band / 2;
    const y = (v) => top + plotHeight - (plotHeight * v) / 100;
    for (const t of [0, 25, 50, 75, 100]) {
      svg.append(svgEl("line", { class: "axis", x1: left, x2: width - 8, y1: y(t), y2: y(t) }));
      svg.append(svgEl("text", { class: "tick", x: left - 4, y: y(t) + 4, "text-anchor": "end" }, `${t} %`));
    }
    let d = "";
    let pen = "M";
    points.forEach((p, i) => {
      if (p.value === null) {
        pen = "M";
        return;
      }
      d += `${pen}${x(i)},${y(p.value)}`;
      pen = "L";
    });
    svg.append(svgEl("path", { class: "mark s-line", d }));
    const every = Math.ceil(points.length / Math.floor(width / 70));
    points.forEach((p, i) => {
      if (p.value !== null) {
        const dot = svgEl("circle", { class: "mark s-point", cx: x(i), cy: y(p.value), r: 3 });
        dot.append(svgEl("title", {}, `${p.label}: ${pct(p.value)} of ${p.n} clocks`));
        svg.append(dot);
      }
      if (i % every === 0) {
        svg.append(svgEl("text", { class: "tick", x: x(i), y: top + plotHeight + 14, "text-anchor": "middle" }, p.label));
      }
    });
    return svg;
  }

  /** SPI (x) against CPI (y), with reference lines at 1.0 making four quadrants. */
  function scatter({ label, points }) {
    if (!points.length) return empty(label);
    const values = points.flatMap((p) => [p.x, p.y]);
    const spread = Math.max(0.25, ...values.map((v) => Math.abs(v - 1))) * 1.15;
    const axis = scale(1 - spread, 1 + spread, 4);
    const size = 340;
    const left = 44;
    const top = 10;
    const svg = chart(size + 40, label);
    const x = (v) => left + ((size - 10) * (v - axis.lo)) / (axis.hi - axis.lo);
    const y = (v) => top + size - 10 - ((size - 10) * (v - axis.lo)) / (axis.hi - axis.lo);
    for (const t of axis.ticks) {
      svg.append(svgEl("text", { class: "tick", x: x(t), y: y(axis.lo) + 14, "text-anchor": "middle" }, fmt(t, 2)));
      svg.append(svgEl("text", { class: "tick", x: left - 4, y: y(t) + 4, "text-anchor": "end" }, fmt(t, 2)));
    }
    svg.append(svgEl("rect", { class: "axis", x: x(axis.lo), y: y(axis.hi), width: x(axis.hi) - x(axis.lo), height: y(axis.lo) - y(axis.hi), fill: "none" }));
    svg.append(svgEl("line", { class: "ref", x1: x(1), x2: x(1), y1: y(axis.lo), y2: y(axis.hi) }));
    svg.append(svgEl("line", { class: "ref", x1: x(axis.lo), x2: x(axis.hi), y1: y(1), y2: y(1) }));
    const corner = [
      [x(axis.hi) - 4, y(axis.hi) + 12, "end", "ahead · under budget"],
      [x(axis.lo) + 4, y(axis.hi) + 12, "start", "behind · under budget"],
      [x(axis.hi) - 4, y(axis.lo) - 6, "end", "ahead · over budget"],
      [x(axis.lo) + 4, y(axis.lo) - 6, "start", "behind · over budget"],
    ];
    for (const [cx, cy, anchor, text] of corner) {
      svg.append(svgEl("text", { class: "quadrant", x: cx, y: cy, "text-anchor": anchor }, text));
    }
    svg.append(svgEl("text", { class: "tick", x: x(axis.hi) + 6, y: y(1) + 4 }, "CPI"));
    svg.append(svgEl("text", { class: "tick", x: x(1), y: y(axis.lo) + 28, "text-anchor": "middle" }, "SPI"));
    for (const p of points) {
      const dot = svgEl("circle", { class: "mark s-dot", cx: x(p.x), cy: y(p.y), r: 5 });
      dot.append(svgEl("title", {}, `${p.label}: SPI ${fmt(p.x, 2)}, CPI ${fmt(p.y, 2)}`));
      svg.append(dot);
      svg.append(svgEl("text", { x: x(p.x) + 7, y: y(p.y) + 4 }, clip(p.label, 18)));
    }
    return svg;
  }

  // ---- sections --------------------------------------------------------------------

  const MIX_SERIES = [
    ["project", "project work"],
    ["service", "service work"],
    ["unclassified", "unclassified"],
  ];

  /** A figure in running text, carrying its exact value (JSON) for whoever checks it. */
  const figure = (name, value, text) =>
    el("span", { "data-figure": name, "data-value": JSON.stringify(value ?? null) }, text);

  function headline(rows) {
    const f = figures(rows);
    const card = (name, title, value, text, detail) =>
      el(
        "div",
        { class: "kpi", "data-kpi": name },
        el("div", { class: "label" }, title),
        el("div", { class: "value", "data-figure": name, "data-value": JSON.stringify(value ?? null) }, text),
        el("div", { class: "detail" }, detail),
      );
    const ci = f.csat_top2_ci;
    return [
      card("items", "Items", f.items, count(f.items), WORK_TYPES.map((w, i) => [
        i ? " · " : "",
        figure(w, f.mix[w], count(f.mix[w])),
        ` ${w}`,
      ])),
      card("sla_attainment_pct", "SLA attainment", f.sla_attainment_pct, pct(f.sla_attainment_pct), [
        "of ",
        figure("sla_cycles", f.sla_cycles, count(f.sla_cycles)),
        " clocks on ",
        figure("sla_items", f.sla_items, count(f.sla_items)),
        ` items (${count(f.sla_met)} met, ${count(f.sla_breached)} breached)`,
      ]),
      card("csat_top2_pct", "CSAT top-2 %", f.csat_top2_pct, pct(f.csat_top2_pct), [
        "95 % CI ",
        figure("csat_top2_ci", ci, ci ? `${fmt(ci[0], 1)}–${fmt(ci[1], 1)} %` : "—"),
        " · mean ",
        figure("csat_mean", f.csat_mean, fmt(f.csat_mean, 2)),
        " · n = ",
        figure("csat_n", f.csat_n, count(f.csat_n)),
        f.csat_n ? "" : " (no ratings)",
      ]),
      card("tco_total", "TCO (service work)", f.tco_total, money(f.tco_total), [
        "labour ",
        figure("tco_labour", f.tco_labour, money(f.tco_labour)),
        " · other ",
        figure("tco_other", f.tco_other, money(f.tco_other)),
      ]),
      card("spi", "SPI (schedule)", f.spi, fmt(f.spi, 2), [
        "Σ EV ÷ Σ PV of ",
        figure("spi_items", f.spi_items, count(f.spi_items)),
        f.spi_items ? " items; above 1 is ahead" : " items: none has both earned and planned value",
      ]),
      card("cpi", "CPI (cost)", f.cpi, fmt(f.cpi, 2), [
        "Σ EV ÷ Σ AC of ",
        figure("cpi_items", f.cpi_items, count(f.cpi_items)),
        f.cpi_items ? " items; above 1 is under budget" : " items: none has both earned value and actual cost",
      ]),
    ];
  }

  function mixSection(rows) {
    const parts = [legend(MIX_SERIES)];
    for (const [field, title] of [["project", "project"], ["team", "team"], ["service", "service"]]) {
      const groups = groupBy(rows, field);
      const bars = groups.map(([name, members]) => {
        const f = figures(members);
        return {
          label: name,
          text: count(f.items),
          parts: WORK_TYPES.map((w) => ({ series: w, value: f.mix[w], title: `${f.mix[w]} ${w}` })),
        };
      });
      const cells = (f) => [...WORK_TYPES.map((w) => num(f.mix[w], count(f.mix[w]), w)), num(f.items, count(f.items), "items")];
      parts.push(
        el("h3", {}, `By ${title}`),
        pair(
          `mix-${field}`,
          hbars({ label: `Work mix by ${title}`, groups: bars, format: count }),
          table([title, "project", "service", "unclassified", "items"], groups.map(([name, m]) => [name, cells(figures(m))])),
        ),
      );
    }
    return parts;
  }

  function clockTags(row, pick) {
    return row.clocks.filter(pick).map((c) => el("span", { class: "tag" }, `${c.name}: ${c.state}`));
  }

  function ticketList(rows, listed, tagged, none) {
    const shown = rows.filter(listed);
    if (!shown.length) return el("p", { class: "note" }, none);
    return el(
      "ul",
      { class: "tickets" },
      shown.map((r) =>
        el("li", { "data-key": r.key }, ticket(r), ` ${r.summary} `,
          el("span", { class: "note" }, `(${r.service})`), clockTags(r, tagged))),
    );
  }

  function slaSection(rows) {
    const service = rows.filter((r) => r.work_type === "service");
    const groups = groupBy(service, "service").map(([name, members]) => [name, figures(members)]);
    const bars = groups
      .filter(([, f]) => f.sla_cycles > 0)
      .map(([name, f]) => ({
        label: name,
        text: `${pct(f.sla_attainment_pct)} of ${f.sla_cycles}`,
        parts: [
          { series: "met", value: f.sla_met, title: `${f.sla_met} clocks met` },
          { series: "breached", value: f.sla_breached, title: `${f.sla_breached} clocks breached` },
        ],
      }));
    const cells = (f) => [
      num(f.sla_attainment_pct, pct(f.sla_attainment_pct), "sla_attainment_pct"),
      num(f.sla_met, count(f.sla_met), "sla_met"),
      num(f.sla_breached, count(f.sla_breached), "sla_breached"),
      num(f.sla_cycles, count(f.sla_cycles), "sla_cycles"),
    ];
    // Breached: a stopped clock over its goal (what attainment counts against). At risk: a
    // running clock the KPIs flag, or one past its goal that has not stopped yet.
    const breached = (c) => c.state === "breached" || c.ever_breached;
    const atRisk = (c) => c.at_risk === true || c.state === "breaching";
    return [
      legend([["met", "clocks met"], ["breached", "clocks breached"]]),
      pair(
        "sla",
        hbars({ label: "SLA attainment per service: clocks met and breached", groups: bars, format: count }),
        table(["service", "attainment", "met", "breached", "clocks"], groups.map(([n, f]) => [n, cells(f)]), ["all service work", cells(figures(service))]),
      ),
      el("p", { class: "note" }, "Attainment counts stopped SLA clocks (a ticket may have several), not tickets."),
      el("h3", {}, "Breached"),
      ticketList(rows, (r) => r.sla_completed.some((flag) => flag), breached, "No ticket has a breached clock."),
      el("h3", {}, "At risk now"),
      ticketList(rows, (r) => r.clocks.some(atRisk), atRisk, "No running clock is at risk or past its goal."),
    ];
  }

  function csatSection(rows) {
    const service = rows.filter((r) => r.work_type === "service");
    const groups = groupBy(service, "service").map(([name, members]) => [name, figures(members)]);
    const rated = groups.filter(([, f]) => f.csat_n > 0);
    const bars = rated.map(([name, f]) => ({
      label: name,
      text: `${pct(f.csat_top2_pct)} (n = ${f.csat_n})`,
      interval: f.csat_top2_ci,
      parts: [{ series: "top2", value: f.csat_top2_pct, title: `top-2 ${pct(f.csat_top2_pct)} of ${f.csat_n} ratings` }],
    }));
    const cells = (f) => [
      num(f.csat_top2_pct, pct(f.csat_top2_pct), "csat_top2_pct"),
      el("td", { class: "num", "data-figure": "csat_top2_ci", "data-value": JSON.stringify(f.csat_top2_ci) }, f.csat_top2_ci ? `${fmt(f.csat_top2_ci[0], 1)}–${fmt(f.csat_top2_ci[1], 1)} %` : "—"),
      num(f.csat_mean, fmt(f.csat_mean, 2), "csat_mean"),
      num(f.csat_n, count(f.csat_n), "csat_n"),
    ];
    const ratings = rows.filter((r) => r.csat !== null).map((r) => r.csat);
    const distribution = [1, 2, 3, 4, 5].map((star) => ({
      label: `${star}`,
      values: [ratings.filter((v) => Math.round(v) === star).length],
      classes: [star >= 4 ? "top2" : "unclassified"],
    }));
    return [
      pair(
        "csat",
        hbars({ label: "CSAT top-2 % per service with 95 % CI", groups: bars, domain: 100, format: (v) => `${v} %`, whiskers: true }),
        table(["service", "top-2 %", "95 % CI", "mean", "n"], rated.map(([n, f]) => [n, cells(f)]), ["all service work", cells(figures(service))]),
      ),
      el("h3", {}, "Ratings (1–5) of the items shown"),
      pair(
        "csat-ratings",
        vbars({ label: "CSAT ratings", bins: distribution, series: [["top2", "ratings"]], format: count }),
        table(["rating", "items"], distribution.map((b) => [b.label, [num(b.values[0], count(b.values[0]), "ratings")]])),
      ),
    ];
  }

  function tcoSection(rows) {
    const service = rows.filter((r) => r.work_type === "service");
    const groups = groupBy(service, "service").map(([name, members]) => [name, figures(members)]);
    const costed = groups.filter(([, f]) => f.tco_total !== null);
    const bars = costed.map(([name, f]) => ({
      label: name,
      text: money(f.tco_total),
      parts: [
        { series: "labour", value: f.tco_labour, title: `labour ${money(f.tco_labour)}` },
        { series: "other", value: f.tco_other, title: `other ${money(f.tco_other)}` },
      ],
    }));
    const cells = (f) => [
      num(f.tco_labour, money(f.tco_labour), "tco_labour"),
      num(f.tco_other, money(f.tco_other), "tco_other"),
      num(f.tco_total, money(f.tco_total), "tco_total"),
    ];
    return [
      legend([["labour", "labour"], ["other", "other costs"]]),
      pair(
        "tco",
        hbars({ label: "TCO per service, labour and other", groups: bars, format: (v) => fmt(v, 0) }),
        table(["service", "labour", "other", "total"], costed.map(([n, f]) => [n, cells(f)]), ["all service work", cells(figures(service))]),
      ),
    ];
  }

  function quadrant(f) {
    if (f.spi === null || f.cpi === null) return "—";
    return `${f.spi >= 1 ? "on or ahead of schedule" : "behind schedule"}, ${f.cpi >= 1 ? "on or under budget" : "over budget"}`;
  }

  function evmSection(rows) {
    const project = rows.filter((r) => r.work_type === "project");
    const groups = groupBy(project, "project").map(([name, members]) => [name, figures(members)]);
    const points = groups.filter(([, f]) => f.spi !== null && f.cpi !== null).map(([name, f]) => ({ label: name, x: f.spi, y: f.cpi }));
    const cells = (f) => [
      num(f.spi, fmt(f.spi, 2), "spi"),
      num(f.cpi, fmt(f.cpi, 2), "cpi"),
      num(f.spi_items, count(f.spi_items), "spi_items"),
      el("td", {}, quadrant(f)),
    ];
    return [
      pair(
        "evm",
        scatter({ label: "SPI against CPI per project", points }),
        table(["project", "SPI", "CPI", "items with EV and PV", "reading"], groups.map(([n, f]) => [n, cells(f)]), ["all project work", cells(figures(project))]),
      ),
      el("p", { class: "note" }, "A project without earned and planned value (or actual cost) has no SPI (or CPI) and is not drawn."),
    ];
  }

  const SLIP_BINS = [
    ["< −14", (d) => d < -14, "early"],
    ["−14…−8", (d) => d >= -14 && d <= -8, "early"],
    ["−7…−1", (d) => d >= -7 && d <= -1, "early"],
    ["0", (d) => d === 0, "slip"],
    ["1…7", (d) => d >= 1 && d <= 7, "late"],
    ["8…14", (d) => d >= 8 && d <= 14, "late"],
    ["15…30", (d) => d >= 15 && d <= 30, "late"],
    ["31…60", (d) => d >= 31 && d <= 60, "late"],
    ["> 60", (d) => d > 60, "late"],
  ];

  function slipSection(rows) {
    const days = rows.filter((r) => r.slip_days !== null).map((r) => Math.round(r.slip_days));
    const bins = SLIP_BINS.map(([label, test, cls]) => ({ label, values: [days.filter(test).length], classes: [cls] }));
    const sorted = [...days].sort((a, b) => a - b);
    const median = sorted.length ? (sorted[(sorted.length - 1) >> 1] + sorted[sorted.length >> 1]) / 2 : null;
    const late = days.filter((d) => d > 0).length;
    return [
      legend([["met", "early"], ["project", "on the day"], ["breached", "late"]]),
      pair(
        "slip",
        vbars({ label: "Schedule slip in days", bins, series: [["slip", "items"]], format: count }),
        table(["days", "items"], bins.map((b) => [b.label, [num(b.values[0], count(b.values[0]), "items")]]), ["all", [num(days.length, count(days.length), "items")]]),
      ),
      el("p", { class: "note", "data-figure": "slip-summary" }, days.length
        ? `${late} of ${days.length} items late; median slip ${fmt(median, 1)} days.`
        : "No item has a due date to slip against."),
    ];
  }

  function bucketOf(iso, monthly) {
    const [y, m, d] = iso.slice(0, 10).split("-").map(Number);
    if (monthly) return `${iso.slice(0, 7)}`;
    const day = Date.UTC(y, m - 1, d);
    const monday = day - ((new Date(day).getUTCDay() + 6) % 7) * DAY;
    return new Date(monday).toISOString().slice(0, 10);
  }

  function trendSection(rows) {
    const dates = rows.flatMap((r) => [r.created, r.resolved]).filter((v) => v !== null).sort();
    if (!dates.length) {
      return [
        el("div", { class: "plot", "data-chart": "trend-items" }, empty("Items opened and resolved")),
        el("div", { class: "plot", "data-chart": "trend-sla" }, empty("SLA attainment over time")),
      ];
    }
    const spanDays = (Date.parse(dates.at(-1).slice(0, 10)) - Date.parse(dates[0].slice(0, 10))) / DAY;
    const monthly = spanDays > 7 * 104;
    const unit = monthly ? "month" : "week";
    const keys = [];
    let cursor = Date.parse(`${bucketOf(dates[0], monthly)}${monthly ? "-01" : ""}`);
    const last = bucketOf(dates.at(-1), monthly);
    for (;;) {
      const key = bucketOf(new Date(cursor).toISOString(), monthly);
      keys.push(key);
      if (key >= last) break;
      cursor = monthly ? Date.UTC(new Date(cursor).getUTCFullYear(), new Date(cursor).getUTCMonth() + 1, 1) : cursor + 7 * DAY;
    }
    const stats = new Map(keys.map((k) => [k, { opened: 0, resolved: 0, clocks: 0, met: 0 }]));
    for (const r of rows) {
      if (r.created) stats.get(bucketOf(r.created, monthly)).opened += 1;
      if (r.resolved) {
        const s = stats.get(bucketOf(r.resolved, monthly));
        s.resolved += 1;
        s.clocks += r.sla_completed.length;
        s.met += r.sla_completed.filter((b) => !b).length;
      }
    }
    const bins = keys.map((k) => ({ label: k, values: [stats.get(k).opened, stats.get(k).resolved] }));
    const points = keys.map((k) => ({ label: k, value: ratio(100 * stats.get(k).met, stats.get(k).clocks), n: stats.get(k).clocks }));
    return [
      legend([["opened", "opened"], ["resolved", "resolved"]]),
      el("h3", {}, `Items opened and resolved per ${unit}`),
      el("div", { class: "plot", "data-chart": "trend-items" },
        vbars({ label: `Items opened and resolved per ${unit}`, bins, series: [["opened", "opened"], ["resolved", "resolved"]], format: count, width: WIDE })),
      el("h3", {}, `SLA attainment per ${unit} of resolution`),
      el("div", { class: "plot", "data-chart": "trend-sla" }, line({ label: `SLA attainment per ${unit}`, points, width: WIDE })),
      el("details", {}, el("summary", {}, `The figures per ${unit}`), el("div", { class: "items-table" },
        table([unit, "opened", "resolved", "SLA attainment", "clocks"], keys.map((k) => {
          const s = stats.get(k);
          const attainment = ratio(100 * s.met, s.clocks);
          return [k, [num(s.opened, count(s.opened), "opened"), num(s.resolved, count(s.resolved), "resolved"),
            num(attainment, pct(attainment), "sla_attainment_pct"), num(s.clocks, count(s.clocks), "sla_cycles")]];
        })))),
    ];
  }

  function itemsSection(rows) {
    const head = ["key", "summary", "source", "project", "service", "team", "type", "status", "work type", "created"];
    return el("div", { class: "items-table" }, el("table", {},
      el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.map((r) => el("tr", { "data-key": r.key },
        el("td", {}, ticket(r)), el("td", { class: "summary" }, r.summary), el("td", {}, r.source),
        el("td", {}, r.project), el("td", {}, r.service), el("td", {}, r.team), el("td", {}, r.type ?? ""),
        el("td", {}, r.status ?? ""), el("td", {}, r.work_type), el("td", {}, r.created ? r.created.slice(0, 10) : "")))),
    ));
  }

  // ---- filters and drawing ---------------------------------------------------------

  const form = document.getElementById("filters");
  const control = (name) => form.querySelector(`[data-filter="${name}"]`);

  function fillChoices() {
    for (const field of FILTERS) {
      const select = control(field);
      const values = [...new Set(ROWS.map((r) => r[field]))].sort();
      for (const value of values) select.append(el("option", { value }, value));
    }
  }

  function selection() {
    const chosen = {};
    for (const field of [...FILTERS, "from", "to"]) chosen[field] = control(field).value;
    return chosen;
  }

  function filtered(chosen) {
    return ROWS.filter((r) => {
      for (const field of FILTERS) if (chosen[field] && r[field] !== chosen[field]) return false;
      if (chosen.from || chosen.to) {
        if (!r.created) return false;
        const day = r.created.slice(0, 10);
        if (chosen.from && day < chosen.from) return false;
        if (chosen.to && day > chosen.to) return false;
      }
      return true;
    });
  }

  function describe(chosen) {
    const parts = FILTERS.filter((f) => chosen[f]).map((f) => `${f} = ${chosen[f]}`);
    if (chosen.from || chosen.to) parts.push(`created ${chosen.from || "…"} to ${chosen.to || "…"}`);
    return parts.length ? `Showing ${parts.join(" · ")}` : "Showing every item";
  }

  const SECTIONS = {
    mix: mixSection,
    sla: slaSection,
    csat: csatSection,
    tco: tcoSection,
    evm: evmSection,
    slip: slipSection,
    trend: trendSection,
    items: itemsSection,
  };

  let renders = 0;

  function draw() {
    const chosen = selection();
    const rows = filtered(chosen);
    document.querySelector('[data-figure="shown"]').textContent = count(rows.length);
    document.querySelector('[data-figure="filter-state"]').textContent = describe(chosen);
    document.getElementById("headline").replaceChildren(...headline(rows));
    for (const [name, build] of Object.entries(SECTIONS)) {
      const body = document.querySelector(`[data-body="${name}"]`);
      body.replaceChildren(...[build(rows)].flat());
    }
    renders += 1;
    document.body.dataset.renders = String(renders);
  }

  fillChoices();
  form.addEventListener("change", draw);
  form.addEventListener("reset", () => window.setTimeout(draw, 0));
  draw();
})();
