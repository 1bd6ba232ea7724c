// The viewer's PACS panel (serve --dicomweb): search studies, list a study's series, open one,
// "Save to PACS". The server talks to the PACS (and holds its credentials); this page only to
// the server. Uses app.js's helpers through window.viewer.
const $ = (id) => document.getElementById(id);
// (window.viewer is first the <section id="viewer"> element, by the DOM's named access.)
while (typeof window.viewer?.api !== 'function') await new Promise((r) => setTimeout(r, 20));
const { api, withBusy, showSession, state } = window.viewer;

const info = await api('/api/info').catch(() => null);
if (info?.pacs) {
  $('pacs-group').hidden = false;
  $('pacs-server').textContent = info.pacs;
  await search();
}

function status(text) {
  $('pacs-status').textContent = text ?? '';
}

function item(text, title, onClick) {
  const li = document.createElement('li');
  const span = document.createElement('span');
  span.className = 'grow';
  span.textContent = text;
  li.title = title;
  li.append(span);
  li.addEventListener('click', onClick);
  return li;
}

async function search() {
  const q = new URLSearchParams();
  const patient = $('pacs-patient').value.trim();
  const accession = $('pacs-accession').value.trim();
  if (patient) q.set('patient', patient);
  if (accession) q.set('accession', accession);
  const list = $('pacs-studies');
  try {
    const { studies } = await api(`/api/pacs/studies?${q}`);
    list.replaceChildren(
      ...studies.map((s) =>
        item(
          `${s.patientName || s.patientId || '(no name)'} · ${s.studyDate || 'no date'} · ${s.modalities.join('/') || '?'} · ${s.instanceCount ?? '?'} images`,
          `study ${s.studyInstanceUid}${s.accessionNumber ? `, accession ${s.accessionNumber}` : ''}`,
          () => listSeries(s.studyInstanceUid),
        ),
      ),
    );
    list.dataset.count = String(studies.length);
    status(studies.length ? `${studies.length} stud${studies.length === 1 ? 'y' : 'ies'}; click one for its series.` : 'No study matches.');
  } catch (e) {
    status(e.message);
  }
}

async function listSeries(study) {
  const list = $('pacs-series');
  try {
    const { series } = await api(`/api/pacs/series?study=${encodeURIComponent(study)}`);
    list.replaceChildren(
      ...series.map((s) =>
        item(
          `${s.modality} #${s.seriesNumber ?? '?'} ${s.seriesDescription || ''} · ${s.instanceCount ?? '?'} images`,
          `series ${s.seriesInstanceUid}`,
          () => {
            if (s.modality !== 'CT') return status(`Series ${s.seriesInstanceUid} is ${s.modality}, not CT.`);
            void open(study, s.seriesInstanceUid);
          },
        ),
      ),
    );
    list.dataset.count = String(series.length);
    status('Click a CT series to open it.');
  } catch (e) {
    status(e.message);
  }
}

async function open(study, series) {
  await withBusy('Fetching the series from the PACS…', async () => {
    const s = await api(`/api/pacs/open?study=${encodeURIComponent(study)}&series=${encodeURIComponent(series)}`, { method: 'POST' });
    await showSession(s);
    status(`Opened from the PACS. Click on a nodule, then "Save to PACS".`);
  });
}

async function save() {
  const s = state.session;
  if (!s?.pacs) return status('Open a series from the PACS first.');
  status('Storing the SEG and its SR on the PACS…');
  try {
    const r = await api(`/api/pacs/save?session=${encodeURIComponent(s.id)}`, { method: 'POST' });
    status(
      r.stored
        ? `Stored on the PACS: SEG series ${r.seriesInstanceUid} and its SR (series ${r.sr.seriesInstanceUid}).`
        : `The PACS already has this SEG (series ${r.seriesInstanceUid}) and its SR.`,
    );
    document.body.dataset.pacsSaved = r.seriesInstanceUid;
  } catch (e) {
    status(e.message);
  }
}

$('pacs-search').addEventListener('submit', (e) => {
  e.preventDefault();
  void search();
});
$('pacs-save').addEventListener('click', () => void save());
