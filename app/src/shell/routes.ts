// The app's pages. Add a view here: { path, component, title (an i18n key), nav (shown in the sidebar) }.
import type { Route } from "./router.svelte";
import Home from "./Home.svelte";
import Settings from "./Settings.svelte";
import ChatView from "../chat/ChatView.svelte";
import DiscoverView from "../discover/DiscoverView.svelte";

export interface NavRoute extends Route {
  nav: boolean;
}

export const routes: NavRoute[] = [
  { path: "/", component: Home, title: "nav.home", nav: true },
  { path: "/chat", component: ChatView, title: "nav.chat", nav: true },
  { path: "/discover", component: DiscoverView, title: "discover.nav", nav: true },
  { path: "/settings", component: Settings, title: "nav.settings", nav: true },
];
