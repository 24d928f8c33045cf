// The stub image metadata Cornerstone3D's metadata modules read (no pixel data): one image
// header per imageId, as the Python tests describe it (UIDs, Rows, Columns, PixelSpacing,
// ImagePositionPatient, ImageOrientationPatient, FrameOfReferenceUID, Modality).

export function planeModule(image) {
  const [rowCosines, columnCosines] = [image.ImageOrientationPatient.slice(0, 3),
    image.ImageOrientationPatient.slice(3, 6)];
  const [rowSpacing, columnSpacing] = image.PixelSpacing;
  return {
    frameOfReferenceUID: image.FrameOfReferenceUID,
    rows: image.Rows,
    columns: image.Columns,
    imageOrientationPatient: image.ImageOrientationPatient,
    rowCosines,
    columnCosines,
    imagePositionPatient: image.ImagePositionPatient,
    sliceThickness: image.SliceThickness || 1,
    pixelSpacing: image.PixelSpacing,
    rowPixelSpacing: rowSpacing,
    columnPixelSpacing: columnSpacing,
    usingDefaultValues: false,
  };
}

export function metadataProvider(images) {
  const byId = new Map(images.map((image) => [image.imageId, image]));
  return {
    get(type, imageId) {
      const image = byId.get(imageId);
      if (!image) return undefined;
      switch (type) {
        case 'imagePlaneModule': return planeModule(image);
        case 'sopCommonModule':
          return { sopInstanceUID: image.SOPInstanceUID, sopClassUID: image.SOPClassUID };
        case 'instance': return image;
        case 'frameNumber': return 1;
        case 'generalSeriesModule':
          return { modality: image.Modality, seriesInstanceUID: image.SeriesInstanceUID,
            studyInstanceUID: image.StudyInstanceUID };
        default: return undefined;
      }
    },
  };
}
