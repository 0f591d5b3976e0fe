"""The Annotate canvas's view: its size taken from the page (the column's width and the window's
height, so the canvas fills the column and fits the screen), and wheel zoom and pan.

One small in-page component (``st.components.v2``, no build step, nothing fetched) placed in the
canvas's column, under the canvas. It reports the column width, the window height and how far
down the page the canvas starts (looked at on every change in the column and twice a second, and
sent only when one changes by 8 px or more, so it costs one extra run when the page first opens)
and, over the drawing canvas
of that column, turns the mouse wheel into zoom about the pointer (1x to 8x) and a drag with the
middle button, or with Space held, into pan. Zoom and pan are a CSS transform of the canvas: the
drawing library maps the pointer through it, so strokes land where the reader sees them and the
mask is composed at full resolution as before. A new canvas (another frame) starts unzoomed;
**Fit** returns to the whole view. The canvas's own toolbar (its undo, redo and clear, beside the
page's) is hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

ZOOM_MAX = 8.0

HTML = """<div class="sgus-view">Wheel over the frame: zoom · Space-drag or middle-drag: pan ·
<button type="button" class="sgus-fit">Fit</button> <span class="sgus-zoom"></span></div>"""

CSS = """
.sgus-view { font-size: 0.8rem; color: var(--st-text-color); opacity: 0.7; line-height: 1.6; }
.sgus-fit { font-size: 0.8rem; padding: 0 0.5rem; border-radius: 0.4rem; cursor: pointer;
  border: 1px solid rgba(128, 128, 128, 0.5); background: transparent; color: inherit; }
"""

JS = r"""
export default function (component) {
  const { setStateValue, parentElement } = component;
  const root = parentElement.host || parentElement;
  // The page column holding the canvas (this component sits in a container of its own in it).
  const block = root.closest('[data-testid="stColumn"]') ||
    root.closest('[data-testid="stVerticalBlock"]') || document.body;
  const label = parentElement.querySelector('.sgus-zoom');
  const views = new WeakMap();  // .dc-container -> {z, x, y}
  let last = [0, 0, 0];

  const canvases = () => {  // the drawing canvases' shadow roots in this column
    const roots = [];
    for (const el of block.querySelectorAll('*')) {
      if (el.shadowRoot && el.shadowRoot.querySelector('.dc-root')) roots.push(el.shadowRoot);
    }
    return roots;
  };
  const hideToolbar = (shadow) => {  // the page has its own Undo, Redo and Clear
    if (shadow.querySelector('style[data-sgus]')) return;
    const style = document.createElement('style');
    style.setAttribute('data-sgus', '');
    style.textContent = '.dc-toolbar { display: none !important; }';
    shadow.appendChild(style);
  };
  const pageTop = (el) => {  // distance from the top of the page, however it is scrolled
    let top = el.getBoundingClientRect().top + window.scrollY;
    for (let e = el.parentElement; e; e = e.parentElement) top += e.scrollTop || 0;
    return Math.round(top);
  };
  const report = () => {
    const shadows = canvases();
    shadows.forEach(hideToolbar);
    const canvas = shadows.length ? shadows[0].querySelector('.dc-root') : root;
    const size = [Math.round(block.clientWidth), Math.round(window.innerHeight), pageTop(canvas)];
    if (size.some((v, i) => Math.abs(v - last[i]) >= 8)) {
      last = size;
      setStateValue('size', size);
    }
  };
  const containerOf = (event) =>
    event.composedPath().find((el) => el.classList && el.classList.contains('dc-container'));
  const apply = (box, view) => {
    const width = box.offsetWidth, height = box.offsetHeight;
    view.x = Math.min(0, Math.max(width - width * view.z, view.x));
    view.y = Math.min(0, Math.max(height - height * view.z, view.y));
    box.style.transformOrigin = '0 0';
    box.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.z})`;
    box.parentElement.style.overflow = view.z > 1 ? 'hidden' : '';
    label.textContent = view.z > 1.001 ? `${view.z.toFixed(1)}x` : '';
  };
  const viewOf = (box) => {
    if (!views.has(box)) views.set(box, { z: 1, x: 0, y: 0 });
    return views.get(box);
  };

  const onWheel = (event) => {
    const box = containerOf(event);
    if (!box) return;
    event.preventDefault();
    const view = viewOf(box);
    const frame = box.parentElement.getBoundingClientRect();
    const px = event.clientX - frame.left, py = event.clientY - frame.top;
    const z = Math.min(%(zmax)s, Math.max(1, view.z * Math.exp(-event.deltaY * 0.0015)));
    view.x = px - ((px - view.x) * z) / view.z;
    view.y = py - ((py - view.y) * z) / view.z;
    view.z = z;
    apply(box, view);
  };

  let space = false, pan = null, over = false;
  const onKey = (event) => {
    if (event.code !== 'Space') return;
    const target = event.target || {};
    const typing = target.tagName === 'TEXTAREA' || target.isContentEditable ||
      (target.tagName === 'INPUT' && target.getAttribute('role') !== 'combobox');
    if (typing && !over) return;  // a space typed into a comment stays a space
    space = event.type === 'keydown';
    if (over) event.preventDefault();  // no page scroll, no select opening under the pointer
  };
  const onDown = (event) => {
    const box = containerOf(event);
    if (!box || !(event.button === 1 || space)) return;
    event.preventDefault();
    event.stopPropagation();  // the drawing canvas never sees a pan
    const view = viewOf(box);
    pan = { box, view, x: event.clientX - view.x, y: event.clientY - view.y };
  };
  const onMove = (event) => {
    over = Boolean(containerOf(event));
    if (pan === null) return;
    event.preventDefault();
    event.stopPropagation();
    pan.view.x = event.clientX - pan.x;
    pan.view.y = event.clientY - pan.y;
    apply(pan.box, pan.view);
  };
  const onUp = (event) => {
    if (pan === null) return;
    event.stopPropagation();
    pan = null;
  };
  const fit = () => {
    for (const host of block.querySelectorAll('*')) {
      const box = host.shadowRoot && host.shadowRoot.querySelector('.dc-container');
      if (box) { views.set(box, { z: 1, x: 0, y: 0 }); apply(box, views.get(box)); }
    }
  };

  const resize = new ResizeObserver(report);
  resize.observe(block);
  window.addEventListener('resize', report);
  block.addEventListener('wheel', onWheel, { passive: false });
  for (const type of ['pointerdown', 'mousedown']) block.addEventListener(type, onDown, true);
  for (const type of ['pointermove', 'mousemove']) window.addEventListener(type, onMove, true);
  for (const type of ['pointerup', 'mouseup']) window.addEventListener(type, onUp, true);
  window.addEventListener('keydown', onKey, true);
  window.addEventListener('keyup', onKey, true);
  const mutations = new MutationObserver(report);  // the canvas mounts after this component
  mutations.observe(block, { childList: true, subtree: true });
  // Content above the column (a hint, a row still being redrawn on a busy server) moves the
  // canvas without resizing or changing this column: look again twice a second, so a canvas
  // fitted to a passing layout is fitted again once the page has settled.
  const timer = setInterval(report, 500);
  const button = parentElement.querySelector('.sgus-fit');
  button.addEventListener('click', fit);
  report();
  return () => {
    clearInterval(timer);
    resize.disconnect();
    mutations.disconnect();
    window.removeEventListener('resize', report);
    block.removeEventListener('wheel', onWheel);
    for (const type of ['pointerdown', 'mousedown']) block.removeEventListener(type, onDown, true);
    for (const type of ['pointermove', 'mousemove']) window.removeEventListener(type, onMove, true);
    for (const type of ['pointerup', 'mouseup']) window.removeEventListener(type, onUp, true);
    window.removeEventListener('keydown', onKey, true);
    window.removeEventListener('keyup', onKey, true);
    button.removeEventListener('click', fit);
  };
}
""".replace("%(zmax)s", repr(ZOOM_MAX))

_VIEW = st.components.v2.component("sgus_canvas_view", html=HTML, css=CSS, js=JS)


@dataclass(frozen=True)
class PageSize:
    """What the browser reported (px): the canvas column's width, the window's height, and how
    far down the page the canvas starts."""

    column_width: int
    window_height: int
    canvas_top: int


def canvas_view(key: str = "ann_canvas_view") -> PageSize | None:
    """Mount the view component in the current column; the size it last reported (None until
    the browser has reported once, and in a test run without a browser)."""
    result = _VIEW(key=key, on_size_change=lambda: None)
    size = getattr(result, "size", None)
    if not size or len(size) != 3:
        return None
    return PageSize(*(int(v) for v in size))
