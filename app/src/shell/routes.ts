// The app's pages. Add a view here: { path, component, title (an i18n key), nav (shown in the sidebar),
// visibleIn (the least mode whose sidebar lists it: "power" or "developer"; left out: every mode) }.
// The sidebar applies visibleIn; the page itself stays reachable by its address in every mode.
import type { Route } from "./router.svelte";
import type { Mode } from "./prefs.svelte";
import Home from "./Home.svelte";
import Settings from "./Settings.svelte";
import ChatView from "../chat/ChatView.svelte";
import ModelsPage from "../models/ModelsPage.svelte";
import DiscoverView from "../discover/DiscoverView.svelte";
import DeveloperPage from "../developer/DeveloperPage.svelte";
import AddMcpPage from "../program/AddMcpPage.svelte";

export interface NavRoute extends Route {
  nav: boolean;
  visibleIn?: Mode;
}

export const routes: NavRoute[] = [
  { path: "/", component: Home, title: "nav.home", nav: true },
  { path: "/chat", component: ChatView, title: "nav.chat", nav: true },
  { path: "/models", component: ModelsPage, title: "models.nav", nav: true, visibleIn: "power" },
  { path: "/developer", component: DeveloperPage, title: "developer.nav", nav: true, visibleIn: "developer" },
  { path: "/discover", component: DiscoverView, title: "discover.nav", nav: true },
  { path: "/settings", component: Settings, title: "nav.settings", nav: true },
  { path: "/add-mcp", component: AddMcpPage, title: "program.nav", nav: false },
];
