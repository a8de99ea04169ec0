// The `pacs:` image loader: Cornerstone asks for `pacs:<fileId>[?frame=n]`, the file comes from
// the viewer's cache (or the study source) and the DICOM image loader decodes it in its web
// worker. A file that cannot be shown is rejected with one sentence naming the instance and why,
// which the viewport then displays in place of the image.

import { imageLoader, type Types } from "@cornerstonejs/core";
import { wadouri, type Types as LoaderTypes } from "@cornerstonejs/dicom-image-loader";

import type { ReadPriority } from "./cache";
import { type Instances, messageOf, parseImageId, SCHEME } from "./instances";
import { transferSyntaxName } from "./transfer-syntax";

/** Why an image cannot be shown, in one sentence naming the instance. */
export class ImageUnavailable extends Error {}

function readPriority(requestType: unknown): ReadPriority {
  // Cornerstone's RequestType values: a viewport showing the image asks with "interaction".
  if (requestType === "interaction") return "interaction";
  if (requestType === "thumbnail") return "thumbnail";
  return "prefetch";
}

async function loadImage(instances: Instances, imageId: string, options: Record<string, unknown>): Promise<Types.IImage> {
  const { fileId, frameIndex } = parseImageId(imageId);
  let loaded;
  try {
    loaded = await instances.load(fileId, readPriority(options.requestType));
  } catch (error) {
    // The source's message already names the instance (study-source.ts).
    throw new ImageUnavailable(messageOf(error));
  }
  const { header, dataSet } = loaded;
  const reason = instances.undecodable(header);
  if (reason !== null) throw new ImageUnavailable(`${instances.describe(fileId)}: ${reason}`);
  if (frameIndex >= header.frames) throw new ImageUnavailable(`${instances.describe(fileId)} has no frame ${frameIndex + 1}.`);
  let image: Types.IImage;
  try {
    const loaded = wadouri.loadImageFromPromise(Promise.resolve(dataSet), imageId, frameIndex, fileId, options as LoaderTypes.DICOMLoaderImageOptions);
    image = await loaded.promise;
  } catch (error) {
    throw new ImageUnavailable(
      `${instances.describe(fileId)} could not be decoded (${transferSyntaxName(header.transferSyntax)}, ${header.transferSyntax}): ${messageOf(error)}`,
    );
  }
  // The decoded image would otherwise keep the whole parsed file alive for as long as it stays
  // in Cornerstone's cache, and the file cache's bound would mean nothing.
  delete (image as { data?: unknown }).data;
  return image;
}

export function registerPacsImageLoader(instances: Instances): void {
  // Cornerstone 5.14's loadAndCacheImage drops the promise cache.putImageLoadObject returns, and
  // that promise rethrows: every image that cannot be loaded also surfaces as an unhandled
  // rejection, though the viewport has already shown why (IMAGE_LOAD_ERROR). Only those are
  // kept quiet; any other rejection still reaches the console.
  window.addEventListener("unhandledrejection", (event) => {
    if (event.reason instanceof ImageUnavailable) event.preventDefault();
  });
  imageLoader.registerImageLoader(SCHEME, (imageId: string, options?: Record<string, unknown>) => ({
    promise: loadImage(instances, imageId, options ?? {}),
  }));
}
