// What the libraries need to stay inside the page's Content Security Policy: no style-src and no
// img-src beyond 'self', so inline style attributes and data:/blob: images are refused. Both
// shims below only change how a load the policy would refuse is done; they grant nothing the
// policy forbids, and nothing else on the page is affected.

let installed = false;

// Cornerstone Tools 5.14 styles the text of every measurement label with
// setAttribute("style", …) (drawingSvg/drawTextBox.js): the browser refuses it and reports a
// violation for each label. The same declarations set through the CSSOM are allowed.
function routeSvgTextStylesThroughCssom(): void {
  const setAttribute = Element.prototype.setAttribute;
  Object.defineProperty(SVGTextElement.prototype, "setAttribute", {
    configurable: true,
    writable: true,
    value: function (this: SVGTextElement, name: string, value: string): void {
      if (name.toLowerCase() === "style") this.style.cssText = value;
      else setAttribute.call(this, name, value);
    },
  });
}

const JPEG_DATA_URL = "data:image/jpeg;base64,";

// The DICOM image loader decodes 8-bit colour JPEG baseline frames on the main thread through an
// <img> whose src is a data: URL (imageLoader/decodeJPEGBaseline8BitColor.js), which img-src
// refuses. createImageBitmap decodes the same bytes with the same browser decoder and no load;
// the loader's onload then draws the bitmap it is handed (`this`) and reads the size it set.
function decodeJpegDataUrlsAsBitmaps(): void {
  const descriptor = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  const get = descriptor?.get;
  const set = descriptor?.set;
  if (descriptor === undefined || get === undefined || set === undefined) return;
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: descriptor.enumerable ?? true,
    get(this: HTMLImageElement): string {
      return get.call(this) as string;
    },
    set(this: HTMLImageElement, value: string) {
      if (typeof value !== "string" || !value.startsWith(JPEG_DATA_URL)) {
        set.call(this, value);
        return;
      }
      const binary = atob(value.slice(JPEG_DATA_URL.length));
      const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
      createImageBitmap(new Blob([bytes], { type: "image/jpeg" })).then(
        (bitmap) => {
          this.width = bitmap.width;
          this.height = bitmap.height;
          (this.onload as ((this: ImageBitmap, event: Event) => void) | null)?.call(bitmap, new Event("load"));
        },
        () => this.onerror?.call(this, new Event("error")),
      );
    },
  });
}

export function keepLibrariesInsideTheCsp(): void {
  if (installed) return;
  installed = true;
  routeSvgTextStylesThroughCssom();
  decodeJpegDataUrlsAsBitmaps();
}
