// DOM helpers. Text always goes in as text (never as HTML): reasons, outputs and strings come
// from contracts and models and may hold anything.

/** h("a", {href: "#/tx/0x…", class: "hash"}, "0x12…") */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/**
 * A table cell from a cell spec: a string, or {text, href?, state?, title?, class?}. `state`
 * makes a badge whose colour follows the PIPE state (and is also written out as text).
 */
function cell(spec) {
  const value = typeof spec === "object" && spec !== null ? spec : {text: String(spec ?? "")};
  let content = value.text;
  if (value.state) content = h("span", {class: "badge", "data-state": value.state}, value.text);
  else if (value.href) content = h("a", {href: value.href}, value.text);
  return h("td", {class: value.class, title: value.title}, content);
}

/**
 * Make `tbody` show `rows` ([{key, cells}]) in order, reusing the <tr> of a key that is still
 * there and rewriting its cells only when they changed, so rows do not flicker, focus mostly
 * stays where it was, and a new row is a new element (what an observer of new rows sees).
 */
export function syncRows(tbody, rows) {
  const old = new Map([...tbody.children].map((tr) => [tr.dataset.key, tr]));
  const wanted = rows.map(({key, cells, attrs = {}}) => {
    const signature = JSON.stringify([cells, attrs]);
    let tr = old.get(key);
    if (tr === undefined) {
      tr = h("tr", {"data-key": key});
    }
    if (tr.dataset.signature !== signature) {
      tr.dataset.signature = signature;
      for (const [name, value] of Object.entries(attrs)) tr.setAttribute(name, value);
      tr.replaceChildren(...cells.map(cell));
    }
    old.delete(key);
    return tr;
  });
  for (const tr of old.values()) tr.remove();
  wanted.forEach((tr, i) => {
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
  });
}
