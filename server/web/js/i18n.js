// Chinese and English. The browser's language picks the first time; the switch changes it,
// and the choice is kept. Each page adds its own strings (strings_driver.js, strings_admin.js).

const LANGS = ["zh", "en"];
const STORE_KEY = "cs.lang";
const strings = { zh: {}, en: {} };
const listeners = new Set();
let current = pick();

function pick() {
  const kept = localStorage.getItem(STORE_KEY);
  if (LANGS.includes(kept)) return kept;
  const wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  for (const tag of wanted) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (LANGS.includes(base)) return base;
  }
  return "en";
}

export function add(table) {
  for (const lang of LANGS) Object.assign(strings[lang], table[lang] || {});
}

export function lang() {
  return current;
}

export function setLang(next) {
  if (!LANGS.includes(next) || next === current) return;
  current = next;
  localStorage.setItem(STORE_KEY, next);
  document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
  for (const listener of listeners) listener(next);
}

export function onLang(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The text for `key` in the current language, with {name} filled from `vars`. */
export function t(key, vars = {}) {
  const text = strings[current][key] ?? strings.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** A refusal from the station in words: ours for the keys we know, else the station's own. */
export function refusal(error, msg) {
  const key = `error.${error}`;
  if (strings[current][key] !== undefined) return strings[current][key];
  return msg || t("error.unknown");
}

/** The language switch for a page's header. */
export function languageSwitch(h) {
  const select = h("select", { "aria-label": "Language / 语言", dataset: { test: "lang" } },
    h("option", { value: "zh" }, "中文"), h("option", { value: "en" }, "English"));
  select.value = current;
  select.addEventListener("change", () => setLang(select.value));
  onLang((next) => { select.value = next; });
  return select;
}

document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
