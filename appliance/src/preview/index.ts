// Signature previews: a self-contained HTML gallery and its screenshot.
export { buildGallery, renderPreviews, inlineImages, PREVIEW_RECIPIENT, type Gallery, type GalleryOptions, type PreviewVariant, type UserPreview } from './gallery';
export { screenshot, chromiumCommand, type ScreenshotOptions } from './screenshot';
