// The tabbed workspace (user manual, "Workspace Overview"): Viewer, Studies, Administration,
// My Account, and Logout.

import { h, replace } from "../dom";
import { accountTab } from "./account";
import type { App } from "./app";
import { studiesTab } from "./studies";
import { describe } from "./windows";

type Tab = "viewer" | "studies" | "administration" | "account";

const LABELS: Record<Tab, string> = {
  viewer: "Viewer",
  studies: "Studies",
  administration: "Administration",
  account: "My Account",
};

/** The Viewer tab: the studies open in viewer windows of this tab, to bring forward or close. */
function viewerTab(app: App, container: HTMLElement): void {
  const list = h("div", { class: "open-studies", "data-testid": "open-studies" });
  const render = (): void => {
    if (!container.contains(list)) {
      stop();
      window.clearInterval(timer);
      return;
    }
    const viewers = app.windows.list().filter((entry) => entry.kind === "viewer");
    if (viewers.length === 0) {
      replace(list, h("p", { class: "hint" }, "No study is open. Choose Open in new Window in the action menu of a study on the Studies tab."));
      return;
    }
    replace(
      list,
      ...viewers.map((entry) =>
        h(
          "div",
          { class: "open-study", "data-testid": "open-study" },
          h("span", {}, describe(entry.study) + (entry.advanced ? " (advanced viewer)" : "")),
          h("button", { type: "button", onclick: () => entry.window.focus() }, "Show"),
          h("button", { type: "button", onclick: () => { entry.window.close(); render(); } }, "Close"),
        ),
      ),
    );
  };
  const stop = app.windows.onChange(render);
  // A window closed by its own close button says nothing to us: look again every second.
  const timer = window.setInterval(render, 1000);
  replace(container, h("section", { class: "panel" }, h("h3", {}, "Open studies"), list));
  render();
}

function administrationTab(container: HTMLElement): void {
  replace(
    container,
    h(
      "div",
      { class: "account" },
      h("section", { class: "panel" }, h("h3", {}, "My Settings"), h("p", { class: "hint" }, "Notification and search preferences, DICOMweb and DICOM Node connection details arrive with their releases.")),
      h("section", { class: "panel" }, h("h3", {}, "My organizations"), h("p", { class: "hint" }, "You are not a member of an organization.")),
    ),
  );
}

export function workspace(app: App, initial: Tab = "studies"): void {
  const content = h("main", { class: "content" });
  const tabs = new Map<Tab, HTMLButtonElement>();
  const select = (tab: Tab): void => {
    for (const [name, button] of tabs) button.setAttribute("aria-selected", String(name === tab));
    if (tab === "studies") studiesTab(app, content);
    else if (tab === "account") accountTab(app, content);
    else if (tab === "administration") administrationTab(content);
    else viewerTab(app, content);
  };
  const nav = h("nav", { class: "tabs", role: "tablist" });
  for (const tab of Object.keys(LABELS) as Tab[]) {
    const button = h("button", { type: "button", role: "tab", onclick: () => select(tab) }, LABELS[tab]);
    tabs.set(tab, button);
    nav.appendChild(button);
  }
  nav.appendChild(h("span", { class: "spacer" }));
  nav.appendChild(h("span", { class: "who", "data-testid": "signed-in-as" }, app.email));
  nav.appendChild(h("button", { type: "button", role: "tab", class: "logout", onclick: () => void app.logout() }, "Logout"));
  replace(app.root, h("div", { class: "workspace" }, h("header", { class: "topbar" }, h("span", { class: "brand" }, "SecurePACS"), nav), content));
  select(initial);
}
