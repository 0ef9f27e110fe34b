// Building the page. Every text from the station or a user goes in as a text node, never as
// HTML: a username of <img src=x onerror=...> shows as those characters and runs nothing.

/**
 * An element: h("button", {class: "primary", onclick: go}, "Charge").
 * Props starting with "on" are listeners; `dataset` is copied; other props are attributes.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/** The same for SVG elements (charts). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace what a node holds. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** Ask before an action that cannot be undone; resolves true or false. */
export function confirmDialog(text, okText, cancelText) {
  return new Promise((resolve) => {
    const ok = h("button", { class: "danger", type: "button", dataset: { test: "confirm-ok" } }, okText);
    const cancel = h("button", { type: "button", dataset: { test: "confirm-cancel" } }, cancelText);
    const dialog = h("dialog", { class: "confirm", "aria-modal": "true" },
      h("p", {}, text), h("div", { class: "actions" }, cancel, ok));
    const finish = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    ok.addEventListener("click", () => finish(true));
    cancel.addEventListener("click", () => finish(false));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      finish(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** Money and energy as people read them: two decimals, exactly as the station rounded. */
export function kwh(value) {
  return Number(value).toFixed(2);
}

export function yuan(value) {
  return Number(value).toFixed(2);
}
