// Reports: a day, ISO week or month per pile (GET /admin/reports) as a table and a chart, and
// the period's bills as CSV. The CSV is fetched with the bearer header and handed to the
// browser as a Blob URL, so the token never goes into a URL (history, logs, a download list).
import { h, fill, kwh, yuan } from "./dom.js";
import { t, refusal } from "./i18n.js";
import { ApiError } from "./api.js";
import { barChart } from "./chart.js";

const PERIODS = ["day", "week", "month"];

function today() {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

const COLUMNS = [
  ["reports.sessions", (r) => String(r.sessions)],
  ["reports.hours", (r) => r.timeOfUse.toFixed(2)],
  ["reports.kwh", (r) => kwh(r.quantity)],
  ["reports.charge", (r) => yuan(r.costOfCharge)],
  ["reports.service", (r) => yuan(r.costOfService)],
  ["reports.cost", (r) => yuan(r.cost)],
];

export class ReportsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.report = null;
    this.period = "day";
    this.date = today();
    this.el = h("section", { class: "reports-view", dataset: { test: "reports-view" } });
    this.chartWidth = 0;
    this.onResize = () => {
      if (this.report && Math.abs(this.measure() - this.chartWidth) > 20) this.drawChart();
    };
    window.addEventListener("resize", this.onResize);
    this.render();
  }

  stop() {
    window.removeEventListener("resize", this.onResize);
  }

  shown() {
    if (!this.report) this.load();
    else this.onResize(); // drawn while hidden: at a guessed width
  }

  render() {
    this.periodField = h("select", { id: "report-period", class: "field", dataset: { test: "report-period" } },
      PERIODS.map((p) => h("option", { value: p, selected: p === this.period }, t(`reports.${p}`))));
    this.dateField = h("input", {
      type: "date", id: "report-date", value: this.date, required: true, dataset: { test: "report-date" },
    });
    this.notice = h("p", { class: "notice hidden", role: "status", dataset: { test: "report-notice" } });
    this.out = h("div", { class: "report-out" });
    const csv = h("button", { type: "button", dataset: { test: "report-csv" }, onclick: () => this.download() },
      t("reports.csv"));
    const form = h("form", { class: "card report-form" },
      h("h2", {}, t("reports.title")),
      h("div", { class: "row" },
        h("div", {}, h("label", { for: "report-period" }, t("reports.period")), this.periodField),
        h("div", {}, h("label", { for: "report-date" }, t("reports.date")), this.dateField)),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", dataset: { test: "report-show" } }, t("reports.show")),
        csv),
      this.notice);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.load();
    });
    fill(this.el, form, this.out);
    if (this.report) this.draw();
  }

  say(kind, text) {
    this.notice.className = `notice ${kind}`;
    this.notice.textContent = text;
    this.notice.classList.toggle("hidden", !text);
  }

  async load() {
    this.period = this.periodField.value;
    this.date = this.dateField.value || today();
    this.say("", "");
    this.el.setAttribute("aria-busy", "true");
    try {
      this.report = await this.ctx.call("GET", "/admin/reports", { period: this.period, date: this.date });
      this.draw();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      this.say("error", refusal(err.error, err.msg));
    } finally {
      this.el.setAttribute("aria-busy", "false");
    }
  }

  draw() {
    const r = this.report;
    const range = { from: r.from, to: r.to };
    const row = (testId, name, amounts, cls) => h("tr", { dataset: { test: testId }, class: cls },
      h("th", { scope: "row" }, name), COLUMNS.map(([, cell]) => h("td", { class: "num" }, cell(amounts))));
    const table = h("table", { dataset: { test: "report-table" } },
      h("caption", { dataset: { test: "report-range" } }, t("reports.range", range)),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("reports.pile")),
        COLUMNS.map(([key]) => h("th", { scope: "col", class: "num" }, t(key))))),
      h("tbody", {}, r.piles.map((p) => row(`report-row-${p.stationId}`, p.name, p))),
      h("tfoot", {}, row("report-total", t("reports.total"), r.total, "total")));
    this.chartCard = h("section", { class: "card chart-card" });
    fill(this.out,
      h("section", { class: "card" }, h("div", { class: "table-wrap" }, table)),
      this.chartCard);
    this.drawChart();
  }

  /** The chart's width: its card's inner width while shown, else a desktop's. */
  measure() {
    const inner = this.chartCard ? this.chartCard.clientWidth - 32 : 0; // less its padding
    return inner > 0 ? inner : 640;
  }

  drawChart() {
    const r = this.report;
    this.chartWidth = this.measure();
    const description = r.piles
      .map((p) => t("chart.desc", { pile: p.name, kwh: kwh(p.quantity), cost: yuan(p.cost) }))
      .join("; ");
    fill(this.chartCard, barChart({
      title: t("chart.title", { from: r.from, to: r.to }),
      description,
      testId: "report-chart",
      width: this.chartWidth,
      rows: r.piles.map((p) => ({ label: p.name, values: [p.quantity, p.cost] })),
      series: [
        { name: t("chart.energy"), cls: "bar-energy", format: (v) => `${kwh(v)} kWh` },
        { name: t("chart.revenue"), cls: "bar-revenue", format: (v) => `¥${yuan(v)}` },
      ],
    }));
  }

  async download() {
    if (!this.report) await this.load();
    if (!this.report) return;
    const { from, to } = this.report;
    let response;
    try {
      response = await this.ctx.call("GET", "/admin/bills.csv", { from, to }, { raw: true });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      this.say("error", refusal(err.error, err.msg));
      return;
    }
    const name = `bills-${from}-to-${to}.csv`;
    const url = URL.createObjectURL(await response.blob());
    const link = h("a", { href: url, download: name, class: "hidden" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000); // once the browser has taken the file
    this.say("ok", t("reports.downloaded", { name }));
  }
}
