// The tabbed workspace (user manual, "Workspace Overview"): Viewer, Studies, Administration,
// My Account, and Logout.

import { h, replace } from "../dom";
import { accountTab } from "./account";
import type { App } from "./app";
import { studiesTab } from "./studies";

type Tab = "viewer" | "studies" | "administration" | "account";

const LABELS: Record<Tab, string> = {
  viewer: "Viewer",
  studies: "Studies",
  administration: "Administration",
  account: "My Account",
};

function viewerTab(container: HTMLElement): void {
  replace(
    container,
    h("section", { class: "panel" }, h("h3", {}, "Open studies"), h("p", { class: "hint" }, "No study is open. The web viewer arrives in the next release; until then, download a study with the command line (securepacs get).")),
  );
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
    else viewerTab(content);
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
