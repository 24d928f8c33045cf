// What OHIF 3.13 does with SR files, step by step, on the real dcmjs and Cornerstone3D
// adapters (the OHIF extension itself cannot run outside a browser: it needs React,
// @ohif/core and a DICOMweb data source).  Every rule below is OHIF 3.13.13's, as published
// on npm (@ohif/extension-cornerstone-dicom-sr, @ohif/core, @ohif/extension-cornerstone,
// @ohif/extension-measurement-tracking 3.13.13, the same code as GitHub OHIF/Viewers):
//
// 1. Which SR is shown.  extensions/cornerstone-dicom-sr/src/getSopClassHandlerModule.ts,
//    _getDisplaySetsFromSeries: one display set per SR *series*; its instances are sorted
//    by utils.sortStudyInstances (platform/core/src/utils/sortStudy.ts, sortByInstanceNumber:
//    parseInt(InstanceNumber) || 0 ascending, then SOP Instance UID) and only the last one
//    is loaded ("The last instance is the newest one").  -> displayed
// 2. Its measurements.  Same file, _getMeasurements: the Measurement Groups of Imaging
//    Measurements, merged by Tracking Unique Identifier; a group with a SCOORD of its own
//    (TID 1410 style) gives graphicType/graphicCode/pointsLength, otherwise the SCOORDs the
//    NUMs are INFERRED FROM give the coordinates.  Only an SR whose title is Imaging
//    Measurement Report (126000, DCM) has measurements.  -> measurements
// 3. Whether OHIF offers to load it as editable measurements.  utils/isRehydratable.ts:
//    true when some measurement's Tracking Identifier names an adapter
//    (MeasurementReport.getAdapterForTrackingIdentifier), or its graphic type/code/point count
//    does (getAdaptersForTypes), whose tool type has a measurement-service mapping
//    (extensions/cornerstone/src/initMeasurementService.ts).  The measurement-tracking mode
//    then prompts (PROMPT_HYDRATE_SR) and the viewport badge says "Click LOAD to restore
//    measurements."; otherwise "This structured report is not compatible with this
//    application." (extensions/cornerstone/src/components/ModalityLoadBadge).  -> rehydratable
// 4. Hydration.  utils/hydrateStructuredReport.ts: MeasurementReport.generateToolState(
//    instance, {"<ReferencedSOPInstanceUID>:<frame>": imageId}, metaData), then only the
//    tool types with a mapping are kept.  -> tools
//
// The instance is what dcmjs makes of the file (DicomMessage.readFile, naturalizeDataset),
// as OHIF's DicomMetadataStore naturalizes DICOMweb metadata.  Each referenced image gets a
// stub header (spec.geometry, overridden per SOP Instance UID by spec.images) served by a
// Cornerstone3D metadata provider; handle points are given back in image (column, row)
// coordinates with Cornerstone3D's worldToImageCoords.
import { readFileSync, writeFileSync } from 'node:fs';
import * as core from '@cornerstonejs/core';
import { adaptersSR } from '@cornerstonejs/adapters';
import dcmjs from 'dcmjs';
import { metadataProvider } from './metadata.mjs';

const { MeasurementReport, TEXT_ANNOTATION_POSITION } = adaptersSR.Cornerstone3D;

// Annotation types with a Cornerstone3DTools 0.1 mapping in OHIF 3.13's measurement service.
const OHIF_MAPPINGS = new Set(['Length', 'Crosshairs', 'Bidirectional', 'EllipticalROI',
  'CircleROI', 'ArrowAnnotate', 'Angle', 'CobbAngle', 'RectangleROI', 'PlanarFreehandROI',
  'SplineROI', 'LivewireContour', 'Probe', 'UltrasoundDirectionalTool',
  'UltrasoundPleuraBLineTool', 'SegmentBidirectional', 'CalibrationLine']);

const CODE = {
  ImagingMeasurementReport: '126000', ImagingMeasurements: '126010',
  MeasurementGroup: '125007', TrackingIdentifier: '112039', TrackingUniqueIdentifier: '112040',
};

const asArray = (value) => (value === undefined || value === null ? []
  : Array.isArray(value) ? value : [value]);
const first = (value) => asArray(value)[0];
const concept = (item) => first(item.ConceptNameCodeSequence) || {};
const isScoord = (item) => item.ValueType === 'SCOORD' || item.ValueType === 'SCOORD3D';
const codeOf = (item) => item && { value: item.CodeValue, scheme: item.CodingSchemeDesignator,
  meaning: item.CodeMeaning };

function packageVersion(name) {
  const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

function readInstance(path) {
  const bytes = readFileSync(path);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const message = dcmjs.data.DicomMessage.readFile(buffer);
  return dcmjs.data.DicomMetaDictionary.naturalizeDataset(message.dict);
}

// platform/core/src/utils/sortStudy.ts: compareSameSeries's UID order and sortByInstanceNumber
function compareValues(a, b) {
  if (a == b) return 0;
  if (!a && b) return -1;
  if (!b && a) return 1;
  return a < b ? -1 : 1;
}

function byInstanceNumber(a, b) {
  const [left, right] = [parseInt(a.InstanceNumber) || 0, parseInt(b.InstanceNumber) || 0];
  return left !== right ? left - right : compareValues(a.SOPInstanceUID, b.SOPInstanceUID);
}

function coordinate(item) {
  const image = first(first(item.ContentSequence)?.ReferencedSOPSequence);
  return {
    valueType: item.ValueType, graphicType: item.GraphicType,
    graphicData: asArray(item.GraphicData),
    referencedSOPInstanceUID: image?.ReferencedSOPInstanceUID,
    referencedFrameNumber: image?.ReferencedFrameNumber || 1,
  };
}

function textAnnotationPosition(item) {
  const name = concept(item);
  return name.CodeValue === TEXT_ANNOTATION_POSITION.value
    && name.CodingSchemeDesignator === TEXT_ANNOTATION_POSITION.schemeDesignator;
}

function measurement(items) {
  const trackingIdentifier = items.find((i) => concept(i).CodeValue === CODE.TrackingIdentifier);
  const trackingUid = items.find((i) => i.ValueType === 'UIDREF');
  const found = {
    TrackingIdentifier: trackingIdentifier?.TextValue,
    TrackingUniqueIdentifier: trackingUid?.UID,
    coords: [],
  };
  if (items.some((i) => isScoord(i) && !textAnnotationPosition(i))) {  // TID 1410 style
    const graphic = items.find(isScoord);
    const name = concept(graphic);
    found.coords.push(coordinate(graphic));
    found.graphicCode = `${name.CodingSchemeDesignator}:${name.CodeValue}`;
    found.graphicType = graphic.GraphicType;
    found.pointsLength = asArray(graphic.GraphicData).length
      / (graphic.ValueType === 'SCOORD3D' ? 3 : 2);
    return found;
  }
  for (const num of items.filter((i) => i.ValueType === 'NUM')) {
    const children = asArray(num.ContentSequence);
    const graphic = children.find((i) => isScoord(i) && !i.ConceptNameCodeSequence)
      ?? children.find(isScoord);
    if (graphic) found.coords.push(coordinate(graphic));
  }
  return found;
}

function measurements(instance) {
  if (concept(instance).CodeValue !== CODE.ImagingMeasurementReport) return [];
  const container = asArray(instance.ContentSequence)
    .find((i) => concept(i).CodeValue === CODE.ImagingMeasurements);
  if (!container) return [];
  const merged = new Map();
  for (const group of asArray(container.ContentSequence)) {
    if (concept(group).CodeValue !== CODE.MeasurementGroup) continue;
    const items = asArray(group.ContentSequence);
    const uid = items.find((i) => concept(i).CodeValue === CODE.TrackingUniqueIdentifier);
    if (!uid) throw new Error('a Measurement Group has no Tracking Unique Identifier');
    if (!merged.has(uid.UID)) merged.set(uid.UID, [...items]);
    else merged.get(uid.UID).push(...items.filter((i) => i !== uid));
  }
  return [...merged.values()].map(measurement);
}

function isRehydratable(found) {
  for (const { TrackingIdentifier = '', graphicType, graphicCode, pointsLength } of found) {
    if (!TrackingIdentifier && !graphicType) continue;
    const adapter = MeasurementReport.getAdapterForTrackingIdentifier(TrackingIdentifier);
    const byType = MeasurementReport.getAdaptersForTypes(graphicCode, graphicType, pointsLength);
    if ((adapter && OHIF_MAPPINGS.has(adapter.toolType))
      || byType.some((a) => OHIF_MAPPINGS.has(a.toolType))) return true;
  }
  return false;
}

const imageIdOf = (uid, frame) => `csv2sr:${uid}:${frame}`;

function stubImages(records, spec) {
  const images = new Map();
  for (const { found } of records) {
    for (const coord of (found || []).flatMap((m) => m.coords)) {
      const uid = coord.referencedSOPInstanceUID;
      const imageId = imageIdOf(uid, coord.referencedFrameNumber);
      if (!uid || images.has(imageId)) continue;
      images.set(imageId, { FrameOfReferenceUID: `${uid}.0`, ...spec.geometry,
        ...(spec.images || {})[uid], imageId, SOPInstanceUID: uid });
    }
  }
  return [...images.values()];
}

// The adapter reports a measurement group it could not read as a warning, then skips it.
const adapterLog = dcmjs.log.getLogger('cs3d.adapters.Cornerstone3D.MeasurementReport');
let warnings = null;
const describe = (arg) => (arg instanceof Error ? `${arg.name}: ${arg.message}`
  : typeof arg === 'object' ? '' : String(arg));
adapterLog.methodFactory = (method) => (...args) => {
  if (warnings && (method === 'warn' || method === 'error')) {
    warnings.push(args.map(describe).filter(Boolean).join(' '));
  }
};
adapterLog.setLevel('warn');

function tool(toolType, state, byUid) {
  const { annotation } = state;
  const imageId = annotation.metadata.referencedImageId;
  const points = asArray(annotation.data.handles?.points);
  return {
    tool: toolType,
    trackingUniqueIdentifier: state.TrackingUniqueIdentifier,
    trackingIdentifier: byUid.get(state.TrackingUniqueIdentifier)?.TrackingIdentifier,
    referencedSOPInstanceUID: state.sopInstanceUid,
    frameNumber: annotation.data.frameNumber,
    points: points.map((p) => core.utilities.worldToImageCoords(imageId, p)),
    stats: (annotation.data.cachedStats || {})[`imageId:${imageId}`] || {},
    label: annotation.data.label,
    finding: codeOf(first(state.finding)),
    findingSites: asArray(state.findingSites).map((site) => codeOf(first(site))),
  };
}

function hydrateOne(record) {
  const { instance, found } = record;
  const map = {};
  for (const coord of found.flatMap((m) => m.coords)) {
    const key = `${coord.referencedSOPInstanceUID}:${coord.referencedFrameNumber}`;
    map[key] ||= imageIdOf(coord.referencedSOPInstanceUID, coord.referencedFrameNumber);
  }
  warnings = [];
  const stored = MeasurementReport.generateToolState(instance, map, core.metaData);
  record.warnings = warnings;
  warnings = null;
  record.generated = Object.fromEntries(Object.entries(stored).map(([k, v]) => [k, v.length]));
  const byUid = new Map(found.map((m) => [m.TrackingUniqueIdentifier, m]));
  record.tools = Object.entries(stored).filter(([toolType]) => OHIF_MAPPINGS.has(toolType))
    .flatMap(([toolType, states]) => states.map((state) => tool(toolType, state, byUid)));
}

function summary(record) {
  const { path, instance, error } = record;
  return {
    path, error: error ?? null,
    SOPInstanceUID: instance?.SOPInstanceUID, SeriesInstanceUID: instance?.SeriesInstanceUID,
    StudyInstanceUID: instance?.StudyInstanceUID, InstanceNumber: instance?.InstanceNumber,
    SeriesNumber: instance?.SeriesNumber, displayed: record.displayed || false,
    rehydratable: record.rehydratable || false,
    measurements: (record.found || []).map(({ TrackingIdentifier, TrackingUniqueIdentifier,
      graphicType, coords }) => ({ TrackingIdentifier, TrackingUniqueIdentifier, graphicType,
      referencedSOPInstanceUIDs: coords.map((c) => c.referencedSOPInstanceUID) })),
    generated: record.generated || {}, warnings: record.warnings || [], tools: record.tools || [],
  };
}

function markDisplayed(records) {
  const series = new Map();
  for (const record of records.filter((r) => r.instance)) {
    const key = `${record.instance.StudyInstanceUID}/${record.instance.SeriesInstanceUID}`;
    if (!series.has(key)) series.set(key, []);
    series.get(key).push(record);
  }
  for (const members of series.values()) {
    members.sort((a, b) => byInstanceNumber(a.instance, b.instance));
    members[members.length - 1].displayed = true;
  }
  return series.size;
}

export function hydrate(spec, out) {
  const records = spec.files.map((path) => {
    try {
      const instance = readInstance(path);
      return { path, instance, found: measurements(instance) };
    } catch (error) {
      return { path, error: `${error.name}: ${error.message}` };
    }
  });
  const provider = metadataProvider(stubImages(records, spec));
  core.metaData.addProvider((type, imageId) => provider.get(type, imageId), 10000);
  const seriesCount = markDisplayed(records);
  for (const record of records.filter((r) => r.instance)) {
    try {
      record.rehydratable = isRehydratable(record.found);
      hydrateOne(record);
    } catch (error) {
      record.error = `${error.name}: ${error.message}`;
    }
  }
  const versions = Object.fromEntries(['dcmjs', '@cornerstonejs/adapters',
    '@cornerstonejs/core'].map((name) => [name, packageVersion(name)]));
  writeFileSync(out, JSON.stringify({ versions, series: seriesCount,
    files: records.map(summary) }));
}
