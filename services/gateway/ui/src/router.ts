// The pages; the gateway answers index.html for each (waybill_gateway/web_ui.py PAGES).
import { createRouter, createWebHistory } from "vue-router";
import { restore, session } from "./session";
import Login from "./pages/Login.vue";
import Files from "./pages/Files.vue";
import Exports from "./pages/Exports.vue";
import Histories from "./pages/Histories.vue";
import Extraction from "./pages/Extraction.vue";

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: "/", redirect: "/exports" },
    { path: "/login", component: Login, meta: { title: "Sign in", public: true } },
    { path: "/files", component: Files, meta: { title: "Files" } },
    { path: "/exports", component: Exports, meta: { title: "Exports" } },
    { path: "/histories", component: Histories, meta: { title: "Histories" } },
    { path: "/extraction", component: Extraction, meta: { title: "Workflow extraction" } },
  ],
});

router.beforeEach(async (to) => {
  await restore();
  if (!to.meta.public && !session.user) return { path: "/login", query: { next: to.fullPath } };
  return true;
});

router.afterEach((to) => {
  document.title = `${String(to.meta.title ?? "")} · Waybill`;
});
