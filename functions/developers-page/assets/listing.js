// A listing the member reads page by page: the first page replaces the area's table, each
// "Show older …" appends the next under it, and only the newest load of an area writes
// into it (filters changed while one ran). Shared by the request log and the audit trail.

import { api } from './api.js';
import { errorBox, h } from './ui.js';

// `spec`: { url(query) → path, query (URLSearchParams, without the cursor), tableClass,
// caption, columns, row(item) → <tr>, empty (text), more (button text) }. Every item shown
// is pushed to `rows` (what a download takes); `download` is enabled once there are some.
export async function loadListing(area, spec, rows, download, cursor = null, body = null) {
  const ticket = (area.ticket = (area.ticket || 0) + 1);
  const query = new URLSearchParams(spec.query);
  if (cursor) query.set('cursor', cursor);
  area.setAttribute('aria-busy', 'true');
  let page;
  try {
    page = await api('GET', spec.url(query));
  } catch (failure) {
    if (area.ticket !== ticket) return;
    area.replaceChildren(errorBox(failure));
    area.setAttribute('aria-busy', 'false');
    return;
  }
  if (area.ticket !== ticket) return;
  let tbody = body;
  if (!tbody) {
    area.replaceChildren();
    if (page.data.length === 0 && !page.has_more) {
      area.append(h('p', { class: 'empty' }, spec.empty));
      download.disabled = true;
      area.setAttribute('aria-busy', 'false');
      return;
    }
    tbody = h('tbody');
    area.append(
      h(
        'table',
        { class: `data ${spec.tableClass}` },
        h('caption', { class: 'visually-hidden' }, spec.caption),
        h('thead', {}, h('tr', {}, spec.columns.map((name) => h('th', { scope: 'col' }, name)))),
        tbody,
      ),
    );
  }
  for (const item of page.data) {
    rows.push(item);
    tbody.append(spec.row(item));
  }
  download.disabled = rows.length === 0;
  area.querySelector('.more')?.remove();
  if (page.has_more) {
    area.append(
      h('button', { type: 'button', class: 'more', onclick: () => loadListing(area, spec, rows, download, page.next_cursor, tbody) }, spec.more),
    );
  }
  area.setAttribute('aria-busy', 'false');
}
