// The noduleseg viewer page: NiiVue draws the scan and the masks; the server reads scans and
// segments nodules. World coordinates: NiiVue works in RAS mm, the server (like DICOM and
// `noduleseg segment --point`) in LPS mm, so x and y change sign at the boundary.
import { Niivue, SLICE_TYPE, SHOW_RENDER, DRAG_MODE } from '/vendor/niivue.js';

/** Display windows as [low, high] HU: lung W1500/L-600, mediastinal W400/L40. */
const WINDOWS_HU = { lung: [-1350, 150], mediastinal: [-160, 240] };
const VIEWS = {
  axial: SLICE_TYPE.AXIAL,
  coronal: SLICE_TYPE.CORONAL,
  sagittal: SLICE_TYPE.SAGITTAL,
  multi: SLICE_TYPE.MULTIPLANAR,
  render: SLICE_TYPE.RENDER,
};

const $ = (id) => document.getElementById(id);
const state = { session: null, selected: null, window: 'lung', busy: false, scans: [], displayStep: 1 };

const nv = new Niivue({
  backColor: [0.06, 0.07, 0.09, 1],
  crosshairColor: [0.25, 0.8, 1, 0.9],
  show3Dcrosshair: true,
  dragAndDropEnabled: false,
  multiplanarShowRender: SHOW_RENDER.ALWAYS,
  isColorbar: false,
});
await nv.attachToCanvas($('gl'));
nv.setInterpolation(true); // nearest neighbour: mask edges stay on voxel borders
nv.setSliceType(SLICE_TYPE.MULTIPLANAR);
nv.setDrawOpacity(0.5);
nv.setRadiologicalConvention(true); // patient's right on the screen's left, as radiologists read CT

/** Software WebGL (no GPU: SwiftShader, llvmpipe) needs tens of seconds per full CT upload. */
function softwareRenderer() {
  const gl = nv.gl;
  const ext = gl.getExtension('WEBGL_debug_renderer_info');
  const name = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  return /swiftshader|llvmpipe|softpipe|software/i.test(name) ? name : null;
}
const software = softwareRenderer();
state.displayStep = software ? 2 : 1;
$('full-res').checked = state.displayStep === 1;

const rasToLps = (mm) => [-mm[0], -mm[1], mm[2]];
const lpsToRas = (p) => [-p[0], -p[1], p[2]];
const fmt = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toFixed(d));

function showMessage(text) {
  const el = $('message');
  el.textContent = text ?? '';
  el.hidden = !text;
}
function setStatus(text) {
  $('status').textContent = text;
}
function setBusy(busy) {
  state.busy = busy;
  document.body.dataset.busy = busy ? '1' : '0';
  for (const id of ['open-scan', 'upload-files', 'upload-folder']) $(id).disabled = busy;
}

/** fetch + JSON; a non-2xx answer throws the server's one-line message. */
async function api(url, init) {
  let res;
  try {
    res = await fetch(url, init);
  } catch {
    throw new Error('the viewer server cannot be reached (stopped?)');
  }
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (!res.ok) throw new Error(body?.error ?? `${res.status} ${res.statusText}`);
  return body;
}

// ---- scans ----------------------------------------------------------------------------------

async function loadScanList() {
  const { scans } = await api('/api/scans');
  state.scans = scans;
  renderScanList();
}
function renderScanList() {
  const filter = $('scan-filter').value.trim().toLowerCase();
  const sel = $('scan-list');
  sel.replaceChildren();
  for (const s of state.scans) {
    if (filter && !s.path.toLowerCase().includes(filter)) continue;
    const o = document.createElement('option');
    o.value = s.path;
    const what = s.kind === 'dicom' ? `DICOM, ${s.files} files${s.hasXml ? ', LIDC XML' : ''}` : s.kind;
    o.textContent = `${s.path} (${what})`;
    sel.append(o);
  }
  if (!sel.options.length) sel.append(new Option('no scans found in the data folder', ''));
}

async function openFromData(path) {
  if (!path) return;
  await withBusy(`Reading ${path}…`, async () => {
    const s = await api(`/api/open?path=${encodeURIComponent(path)}`, { method: 'POST' });
    await showSession(s);
  });
}

async function upload(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append('file', f, f.webkitRelativePath || f.relativePath || f.name);
  const mb = files.reduce((a, f) => a + f.size, 0) / 2 ** 20;
  await withBusy(`Uploading ${files.length} file${files.length > 1 ? 's' : ''} (${mb.toFixed(1)} MiB)…`, async () => {
    const s = await api('/api/upload', { method: 'POST', body: form });
    await showSession(s);
  });
}

async function withBusy(text, fn) {
  if (state.busy) return;
  showMessage(null);
  setStatus(text);
  setBusy(true);
  try {
    await fn();
  } catch (e) {
    showMessage(e.message);
    setStatus(state.session ? `Scan: ${state.session.name}` : 'Open a scan.');
  } finally {
    setBusy(false);
  }
}

async function showSession(s) {
  if (state.session && state.session.id !== s.id) fetch(`/api/sessions/${state.session.id}`, { method: 'DELETE' }).catch(() => {});
  state.session = s;
  state.selected = s.nodules.at(-1)?.label ?? null;
  const t0 = performance.now();
  while (nv.volumes.length) nv.removeVolume(nv.volumes[0]);
  const [lo, hi] = WINDOWS_HU[state.window];
  await nv.loadVolumes([
    { url: `/api/sessions/${s.id}/scan-${state.displayStep}.nii`, name: 'scan.nii', colormap: 'gray', cal_min: lo, cal_max: hi },
  ]);
  if (nv.drawBitmap) nv.closeDrawing();
  // Long DICOM folder names (UIDs): the first folder and the end of the last one.
  const parts = s.name.split('/');
  const short = parts.length > 2 ? `${parts[0]}/…/…${parts.at(-1).slice(-8)}` : s.name;
  $('scan-name').textContent = `${short} — ${s.dims.join(' × ')} voxels, ${s.spacingMm.map((v) => v.toFixed(2)).join(' × ')} mm`;
  $('scan-name').title = s.name;
  $('dl-mask').href = `/api/sessions/${s.id}/labels.nii.gz`;
  $('dl-seg').href = `/api/sessions/${s.id}/seg.dcm`;
  $('dl-seg').hidden = !s.dicom;
  $('dl-report').href = `/api/sessions/${s.id}/report.json`;
  $('dl-html').href = `/api/sessions/${s.id}/report.html`;
  renderLidc();
  await refreshOverlay();
  renderNodules();
  document.body.dataset.scan = s.id;
  const notes = [...(s.notes ?? [])];
  if (state.displayStep > 1)
    notes.push(
      `No GPU (${software ?? 'software WebGL'}): the scan is shown at half resolution in-plane for speed; masks and measurements are computed at full resolution.`,
    );
  $('note').textContent = notes.join('\n');
  $('note').hidden = notes.length === 0;
  setStatus(`Scan loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s. Click on a nodule to segment it.`);
}

// ---- display ----------------------------------------------------------------------------------

function applyWindow() {
  const v = nv.volumes[0];
  if (!v) return;
  [v.cal_min, v.cal_max] = WINDOWS_HU[state.window];
  nv.updateGLVolume();
}

function setView(name) {
  nv.setSliceType(VIEWS[name]);
  for (const b of document.querySelectorAll('#views button')) b.classList.toggle('on', b.dataset.view === name);
}

function goToWorldLps(p) {
  if (!nv.volumes.length) return;
  nv.scene.crosshairPos = nv.mm2frac(lpsToRas(p));
  nv.drawScene();
}

/** Page (CSS pixel) coordinates of a world point on the current 2D view, or null when not shown. */
function pagePointOf(p) {
  const pos = nv.frac2canvasPos(nv.mm2frac(lpsToRas(p)));
  if (!pos) return null;
  const canvas = $('gl');
  const rect = canvas.getBoundingClientRect();
  const scale = canvas.width / rect.width;
  return [rect.left + pos[0] / scale, rect.top + pos[1] / scale];
}

/**
 * The masks, drawn in NiiVue's drawing layer (its own texture: replacing it does not re-upload
 * the scan): the selected nodule green, the others red, the LIDC readers' consensus (when shown)
 * blue where the model's masks do not cover it, and (when shown) the any-reader extent yellow
 * where some radiologist would draw beyond the mask.
 */
async function refreshOverlay() {
  const s = state.session;
  const lidc = $('show-lidc').checked && s?.lidc.length > 0;
  const anyReader = $('show-any-reader').checked;
  if (s && (s.nodules.length || lidc)) {
    const ok = await nv.loadDrawingFromUrl(
      `/api/sessions/${s.id}/overlay-${state.displayStep}-${state.selected ?? 0}-${lidc ? 1 : 0}-${anyReader ? 1 : 0}-${Date.now()}.nii`,
    );
    if (!ok) throw new Error('the mask overlay could not be loaded');
  } else if (nv.drawBitmap) {
    nv.closeDrawing();
  }
  document.body.dataset.overlay = String(s?.nodules.length ?? 0);
  nv.drawScene();
}

// ---- nodules ----------------------------------------------------------------------------------

let pointerDown = null;
const boxTool = () => $('box-tool').checked;
/** With the box tool on, a left drag on a 2D view draws a box (NiiVue only reports it). */
function applyTools() {
  nv.opts.dragModePrimary = boxTool() ? DRAG_MODE.callbackOnly : DRAG_MODE.crosshair;
}
$('box-tool').addEventListener('change', applyTools);
applyTools();

/** Canvas pixel coordinates of a pointer event. */
function canvasXY(e) {
  const canvas = $('gl');
  const rect = canvas.getBoundingClientRect();
  const scale = canvas.width / rect.width;
  return [(e.clientX - rect.left) * scale, (e.clientY - rect.top) * scale];
}

$('gl').addEventListener('pointerdown', (e) => {
  pointerDown = e.button === 0 ? { x: e.clientX, y: e.clientY, t: performance.now() } : null;
});
$('gl').addEventListener('pointermove', (e) => {
  const down = pointerDown;
  const rectEl = $('box-rect');
  if (!down || !boxTool() || !state.session || state.busy) {
    rectEl.hidden = true;
    return;
  }
  const box = $('viewer').getBoundingClientRect();
  Object.assign(rectEl.style, {
    left: `${Math.min(down.x, e.clientX) - box.left}px`,
    top: `${Math.min(down.y, e.clientY) - box.top}px`,
    width: `${Math.abs(e.clientX - down.x)}px`,
    height: `${Math.abs(e.clientY - down.y)}px`,
  });
  rectEl.hidden = false;
});
$('gl').addEventListener('pointerup', (e) => {
  const down = pointerDown;
  pointerDown = null;
  $('box-rect').hidden = true;
  if (!down || e.button !== 0 || !state.session || state.busy) return;
  const dragged = Math.hypot(e.clientX - down.x, e.clientY - down.y) > 4;
  // A click (not a drag) on a 2D view segments there; a drag is a box with the box tool on,
  // else NiiVue's own behaviour.
  if (dragged || !$('click-tool').checked) return;
  const [x, y] = canvasXY(e);
  if (nv.inRenderTile(x, y) >= 0) return;
  const frac = nv.canvasPos2frac([x, y]);
  if (!frac || frac[0] < 0 || frac.some((v) => v < 0 || v > 1)) return;
  segmentAt(rasToLps(nv.frac2mm(frac)), down.t);
});
// NiiVue reports the drag's two corners in world mm on the view where it started and ended.
nv.onDragRelease = (drag) => {
  if (!boxTool() || !state.session || state.busy) return;
  if (drag.tileIdx < 0 || drag.axCorSag < 0 || drag.axCorSag > 2) return; // left its view, or 3D
  if (drag.fracStart[0] < 0 || drag.fracEnd[0] < 0) return;
  if (drag.mmLength < 2) return; // a click, not a box
  segmentInBox([rasToLps(drag.mmStart), rasToLps(drag.mmEnd)]);
};

async function segmentAt(pointLps, clickedAt = performance.now()) {
  await requestNodule({ pointMm: pointLps }, `Segmenting at ${pointLps.map((v) => v.toFixed(1)).join(', ')} mm…`, clickedAt);
}

async function segmentInBox(cornersLps, drawnAt = performance.now()) {
  const text = cornersLps.map((c) => c.map((v) => v.toFixed(1)).join(', ')).join(' to ');
  await requestNodule({ boxMm: cornersLps }, `Segmenting in the box ${text} mm…`, drawnAt);
}

async function requestNodule(prompt, busyText, startedAt) {
  const s = state.session;
  await withBusy(busyText, async () => {
    const r = await api(`/api/sessions/${s.id}/nodules`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(prompt),
    });
    if (state.session !== s) return; // another scan was opened meanwhile
    // The server sends every nodule again when one is added: the others' Fleischner rows change to "multiple".
    if (r.nodules) s.nodules = r.nodules;
    else if (r.replaced) s.nodules = s.nodules.map((n) => (n.label === r.nodule.label ? r.nodule : n));
    else if (!r.existing) s.nodules.push(r.nodule);
    state.selected = r.nodule.label;
    await refreshOverlay();
    renderNodules();
    const shownMs = performance.now() - startedAt;
    window.viewer.lastClickToMaskMs = shownMs;
    const how = prompt.boxMm ? (r.replaced ? 'segmented again in the box' : 'segmented in the box') : 'segmented';
    setStatus(
      r.existing
        ? `Nodule ${r.nodule.label} selected (the click was inside it).`
        : `Nodule ${r.nodule.label}: ${how} in ${(r.segmentMs / 1000).toFixed(2)} s, shown ${(shownMs / 1000).toFixed(2)} s after the ${prompt.boxMm ? 'drag' : 'click'}.`,
    );
  });
}

async function removeNodule(label) {
  const s = state.session;
  await withBusy(`Removing nodule ${label}…`, async () => {
    const fresh = await api(`/api/sessions/${s.id}/nodules/${label}`, { method: 'DELETE' });
    s.nodules = fresh.nodules;
    if (state.selected === label) state.selected = s.nodules.at(-1)?.label ?? null;
    await refreshOverlay();
    renderNodules();
    setStatus(`Nodule ${label} removed.`);
  });
}

async function selectNodule(label) {
  state.selected = label;
  const n = state.session.nodules.find((x) => x.label === label);
  if (n) goToWorldLps(n.centroidWorldMm ?? n.promptWorldMm);
  await refreshOverlay();
  renderNodules();
}

function renderNodules() {
  const s = state.session;
  const list = $('nodule-list');
  list.replaceChildren();
  $('downloads').hidden = !s;
  for (const n of s?.nodules ?? []) {
    const li = document.createElement('li');
    li.dataset.label = String(n.label);
    li.classList.toggle('selected', n.label === state.selected);
    const text = document.createElement('span');
    text.className = 'grow';
    text.textContent = `#${n.label}  ${fmt(n.volumeMm3)} mm³, ${fmt(n.longestAxialDiameterMm)} mm${n.warnings.length ? '  ⚠' : ''}`;
    const del = document.createElement('button');
    del.type = 'button';
    del.textContent = '×';
    del.title = 'remove this nodule';
    del.addEventListener('click', (e) => {
      e.stopPropagation();
      removeNodule(n.label);
    });
    li.append(text, del);
    li.addEventListener('click', () => selectNodule(n.label));
    list.append(li);
  }
  if (!s?.nodules.length) {
    const li = document.createElement('li');
    li.textContent = s ? 'None yet: click on a nodule, or drag a box around it.' : '';
    list.append(li);
  }
  renderPanel();
}

function renderPanel() {
  const panel = $('nodule-panel');
  const n = state.session?.nodules.find((x) => x.label === state.selected);
  panel.hidden = !n;
  panel.replaceChildren();
  if (!n) return;
  panel.dataset.label = String(n.label);
  panel.dataset.volumeMm3 = String(n.volumeMm3);
  const rows = [
    ['Volume', `${fmt(n.volumeMm3)} mm³`],
    ...(n.anyReaderVolumeMm3 != null ? [['Any reader (up to)', `${fmt(n.anyReaderVolumeMm3)} mm³`]] : []),
    ['Voxels', String(n.voxelCount)],
    ['Equivalent diameter', `${fmt(n.equivalentDiameterMm)} mm`],
    ['Longest axial diameter', `${fmt(n.longestAxialDiameterMm)} mm`],
    ['Perpendicular diameter', `${fmt(n.perpendicularDiameterMm)} mm`],
    ['Mean', `${fmt(n.meanHU, 0)} HU`],
    ['Size class', n.sizeClass ? `${n.sizeClass} (${(Math.max(...n.sizeClassProbabilities) * 100).toFixed(0)} %)` : '–'],
    ['Mean probability', fmt(n.meanProbability, 2)],
    n.promptBoxWorldMm
      ? ['Box (LPS mm)', n.promptBoxWorldMm.map((c) => c.map((v) => v.toFixed(1)).join(', ')).join(' to ')]
      : ['Point (LPS mm)', n.promptWorldMm.map((v) => v.toFixed(1)).join(', ')],
  ];
  if (n.lidcMatch) rows.push(['LIDC match', `nodule ${n.lidcMatch.index}, Dice ${n.lidcMatch.dice.toFixed(3)}`]);
  // What a radiologist acts on first: type, guideline size, Lung-RADS and Fleischner.
  rows.unshift(...clinicalRows(n));
  const table = document.createElement('table');
  for (const [k, v] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = v;
  }
  const h = document.createElement('strong');
  h.textContent = `Nodule ${n.label}`;
  panel.append(h, table);
  for (const w of n.warnings) {
    const p = document.createElement('p');
    p.className = 'warning';
    p.textContent = `⚠ ${w}`;
    panel.append(p);
  }
}

/** Type, guideline measurements and categories: the same as `segment`'s report and HTML page. */
function clinicalRows(n) {
  const g = n.guidelineMeasures;
  if (!g || n.voxelCount === 0) return [];
  const pct = (p) => `${Math.round(p * 100)} %`;
  const rows = [];
  if (n.type && n.typeProbabilities) {
    const [s, ps, gg] = n.typeProbabilities;
    rows.push(['Type', `${n.type} (solid ${pct(s)}, part-solid ${pct(ps)}, ground-glass ${pct(gg)})`]);
  }
  rows.push(['Long × short axis', `${fmt(g.longAxisMm)} × ${fmt(g.shortAxisMm)} mm`]);
  rows.push(['Mean diameter', `${g.meanDiameterLungRadsMm.toFixed(1)} mm (Lung-RADS); ${g.meanDiameterFleischnerMm} mm (Fleischner)`]);
  if (n.type === 'part-solid' && g.solidComponent) {
    const sc = g.solidComponent;
    rows.push([
      'Solid component',
      `${fmt((sc.longAxisMm + sc.shortAxisMm) / 2)} mm, ${fmt(sc.volumeMm3)} mm³ (≥ ${g.solidThresholdHU} HU)`,
    ]);
  }
  if (n.calcified != null) rows.push(['Calcified', pct(n.calcified)]);
  if (n.malignancySuspicion != null)
    rows.push(["Radiologists' suspicion (LIDC)", `${pct(n.malignancySuspicion)} rated 4-5 of 5; not a diagnosis`]);
  if (n.lungRads)
    rows.push([
      n.lungRads.version,
      `${n.lungRads.category}: ${n.lungRads.reason}. ${n.lungRads.management}${n.lungRads.consider4X ? `. ${n.lungRads.consider4X}` : ''}`,
    ]);
  if (n.fleischner) rows.push([n.fleischner.version, `${n.fleischner.row ? `${n.fleischner.row}: ` : ''}${n.fleischner.recommendation}`]);
  return rows;
}

function renderLidc() {
  const s = state.session;
  const list = $('lidc-list');
  list.replaceChildren();
  $('lidc-group').hidden = !s?.lidc.length;
  for (const r of s?.lidc ?? []) {
    const li = document.createElement('li');
    li.dataset.index = String(r.index);
    const text = document.createElement('span');
    text.className = 'grow';
    text.textContent = `LIDC ${r.index}: ${r.readers} reader${r.readers > 1 ? 's' : ''}, ${fmt(r.volumeMm3)} mm³, ${fmt(r.longestAxialDiameterMm)} mm`;
    text.title = `consensus of >= half the readers; centre ${r.centreMm.map((v) => v.toFixed(1)).join(', ')} mm (LPS)`;
    const go = document.createElement('button');
    go.type = 'button';
    go.textContent = 'Go to';
    go.addEventListener('click', () => goToWorldLps(r.centreMm));
    const seg = document.createElement('button');
    seg.type = 'button';
    seg.textContent = 'Segment';
    seg.title = "segment with the model at this nodule's centre";
    seg.addEventListener('click', () => {
      goToWorldLps(r.centreMm);
      segmentAt(r.centreMm);
    });
    li.append(text, go, seg);
    list.append(li);
  }
}

// ---- controls ---------------------------------------------------------------------------------

for (const b of document.querySelectorAll('#views button')) b.addEventListener('click', () => setView(b.dataset.view));
for (const b of document.querySelectorAll('#windows button')) {
  b.addEventListener('click', () => {
    state.window = b.dataset.window;
    for (const o of document.querySelectorAll('#windows button')) o.classList.toggle('on', o === b);
    applyWindow();
  });
}
$('full-res').addEventListener('change', async (e) => {
  state.displayStep = e.target.checked ? 1 : 2;
  if (state.session) await withBusy('Reloading the display…', () => showSession(state.session));
});
/** A checkbox that adds a layer to the overlay, and the status line for each state. */
function overlayToggle(id, shown, hidden) {
  $(id).addEventListener('change', (e) =>
    withBusy('Updating the overlay…', async () => {
      await refreshOverlay();
      setStatus(e.target.checked ? shown : hidden);
    }),
  );
}
overlayToggle(
  'show-lidc',
  "The readers' consensus is shown in blue where the model's masks do not cover it.",
  "The readers' consensus is hidden.",
);
overlayToggle(
  'show-any-reader',
  'The any-reader extent is shown in yellow where some radiologist would draw beyond the mask.',
  'The any-reader extent is hidden.',
);
$('scan-filter').addEventListener('input', renderScanList);
$('open-scan').addEventListener('click', () => openFromData($('scan-list').value));
$('scan-list').addEventListener('dblclick', () => openFromData($('scan-list').value));
$('upload-files').addEventListener('change', (e) => {
  upload([...e.target.files]);
  e.target.value = '';
});
$('upload-folder').addEventListener('change', (e) => {
  upload([...e.target.files]);
  e.target.value = '';
});
for (const a of ['dl-mask', 'dl-seg', 'dl-report', 'dl-html']) {
  $(a).addEventListener('click', (e) => {
    if (!state.session?.nodules.length) {
      e.preventDefault();
      showMessage('Nothing to download yet: click on a nodule first.');
    }
  });
}

// Drag and drop: files, or a DICOM folder (walked with the entries API).
const viewer = $('viewer');
viewer.addEventListener('dragover', (e) => {
  e.preventDefault();
  viewer.classList.add('dragging');
});
viewer.addEventListener('dragleave', () => viewer.classList.remove('dragging'));
viewer.addEventListener('drop', async (e) => {
  e.preventDefault();
  viewer.classList.remove('dragging');
  const entries = [...(e.dataTransfer?.items ?? [])].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
  const files = entries.length ? (await Promise.all(entries.map(collectFiles))).flat() : [...(e.dataTransfer?.files ?? [])];
  upload(files);
});
async function collectFiles(entry) {
  if (entry.isFile) return [await new Promise((ok, fail) => entry.file(ok, fail))];
  const reader = entry.createReader();
  const out = [];
  for (;;) {
    const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) break;
    for (const child of batch) out.push(...(await collectFiles(child)));
  }
  return out;
}

/** A small handle for scripts and the end-to-end test; the page itself does not need it. */
window.viewer = { nv, state, goToWorldLps, pagePointOf, setView, lastClickToMaskMs: null, showSession, withBusy, api };

try {
  const info = await api('/api/info');
  document.title = `noduleseg — ${info.dataFolder}`;
  await loadScanList();
  setStatus(`Open a scan from ${info.dataFolder}/ or upload one (up to ${info.maxUpload}).`);
} catch (e) {
  showMessage(e.message);
}
document.body.dataset.ready = '1';
