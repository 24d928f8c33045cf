// The real Cornerstone3D SR adapters and dcmjs, called by the Python tests.
//
//   node cornerstone.mjs COMMAND SPEC.json OUT
//
// COMMAND is one of ENTRY_POINTS below; SPEC.json is what that command reads, OUT what it
// writes.  Each entry point takes the parsed spec and the output path.
//
// generate-report: SPEC = {images: [...], annotations: [...], options: {...}}.  Each image
// gives the headers Cornerstone3D's metadata modules need (imageId, UIDs, patient and
// study attributes, Rows, Columns, PixelSpacing, ImagePositionPatient,
// ImageOrientationPatient, FrameOfReferenceUID, Modality); each annotation gives a tool
// name, its imageId, its handle points in image (column, row) coordinates and the cached
// statistics the tool would have computed.  The points are turned into patient
// coordinates as a viewport would, and MeasurementReport.generateReport turns them back
// and writes the TID 1500 SR; OUT is the Part 10 file (dcmjs datasetToBuffer).
//
// hydrate: SPEC = {files: [...], geometry: {...}, images: {SOPInstanceUID: {...}}}.  Reads
// every SR file in one process and does, for each, what OHIF 3.13 does (see
// ohif-hydrate.mjs); OUT is JSON.
import { writeFileSync, readFileSync } from 'node:fs';
import * as core from '@cornerstonejs/core';
import { adaptersSR } from '@cornerstonejs/adapters';
import dcmjs from 'dcmjs';
import { planeModule, metadataProvider } from './metadata.mjs';
import { hydrate } from './ohif-hydrate.mjs';

const { MeasurementReport } = adaptersSR.Cornerstone3D;

function toWorld(image, [column, row]) {
  const plane = planeModule(image);
  return [0, 1, 2].map((axis) => plane.imagePositionPatient[axis]
    + column * plane.columnPixelSpacing * plane.rowCosines[axis]
    + row * plane.rowPixelSpacing * plane.columnCosines[axis]);
}

function toolState(spec) {
  const images = new Map(spec.images.map((image) => [image.imageId, image]));
  const state = {};
  for (const annotation of spec.annotations) {
    const image = images.get(annotation.imageId);
    const forImage = (state[annotation.imageId] ||= {});
    const forTool = (forImage[annotation.tool] ||= { data: [] });
    forTool.data.push({
      annotationUID: annotation.annotationUID,
      metadata: {
        toolName: annotation.tool,
        referencedImageId: annotation.imageId,
        FrameOfReferenceUID: image.FrameOfReferenceUID,
      },
      data: {
        label: annotation.label,
        text: annotation.text,
        handles: { points: annotation.points.map((p) => toWorld(image, p)),
          arrowFirst: true, textBox: {} },
        contour: annotation.closed === undefined ? undefined
          : { closed: annotation.closed,
            polyline: annotation.points.map((p) => toWorld(image, p)) },
        cachedStats: { [`imageId:${annotation.imageId}`]: annotation.stats || {} },
      },
      finding: annotation.finding,
      findingSites: annotation.findingSites,
    });
  }
  return state;
}

function generateReport(spec, out) {
  const provider = metadataProvider(spec.images);
  core.metaData.addProvider((type, imageId) => provider.get(type, imageId), 10000);
  const report = MeasurementReport.generateReport(toolState(spec), provider, spec.options || {});
  writeFileSync(out, dcmjs.data.datasetToBuffer(report.dataset));
}

const ENTRY_POINTS = { 'generate-report': generateReport, hydrate };

const [command, specPath, out] = process.argv.slice(2);
if (!ENTRY_POINTS[command]) {
  process.stderr.write(`usage: node cornerstone.mjs {${Object.keys(ENTRY_POINTS).join('|')}} SPEC.json OUT\n`);
  process.exit(2);
}
ENTRY_POINTS[command](JSON.parse(readFileSync(specPath, 'utf8')), out);
