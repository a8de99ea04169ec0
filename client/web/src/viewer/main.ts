import { init as csInit, RenderingEngine, Enums, metaData, imageLoader } from "@cornerstonejs/core";
import { init as dicomInit, wadouri } from "@cornerstonejs/dicom-image-loader";
import { utilities as mdUtilities, Enums as mdEnums } from "@cornerstonejs/metadata";

async function main(): Promise<void> {
  const root = document.getElementById("app")!;
  csInit();
  dicomInit({ maxWebWorkers: 1 });
  const m = /^#plain=(.*)$/.exec(location.hash);
  const view = await (await fetch(decodeURIComponent(m![1]!))).json();
  const first = view.instances[0];
  const bytes = await (await fetch(first.url)).arrayBuffer();
  imageLoader.registerImageLoader("pacs", (imageId: string, options: any) => {
    return { promise: (async () => {
      await mdUtilities.addDicomPart10Instance(imageId.replace(/[?&]frame=\d+$/, ""), bytes);
      return wadouri.loadImageFromNaturalizedMetadata(imageId, options).promise;
    })() } as any;
  });
  const el = document.createElement("div");
  el.id = "vp";
  el.style.width = "512px"; el.style.height = "512px";
  root.replaceChildren(el);
  const engine = new RenderingEngine("e");
  engine.enableElement({ element: el, viewportId: "v", type: Enums.ViewportType.STACK });
  const vp = engine.getViewport("v") as any;
  try {
    await vp.setStack(["pacs:" + first.fileId]);
    vp.render();
    document.body.dataset.state = "ready";
    console.log("natural", Object.keys(metaData.get(mdEnums.MetadataModules.NATURALIZED, "pacs:" + first.fileId) ?? {}).join(","));
  } catch (e) {
    console.log("error", e);
    document.body.dataset.state = "error";
  }
}
void main();
