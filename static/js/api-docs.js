// Starts Swagger UI on /api/docs/ (templates/api/docs.html). A static file rather than
// drf-spectacular's inline script, so the page needs no 'unsafe-inline' in the CSP; the
// values the server knows (schema URL, CSRF header and token, UI settings) come from
// data attributes of #swagger-ui.
"use strict";

(function () {
  const root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  const data = root.dataset;
  let settings = {};
  try {
    settings = JSON.parse(data.settings || "{}");
  } catch (error) {
    console.error("Swagger UI settings are not valid JSON", error);
  }
  // Writes through the staff session need Django's CSRF token; reads do not.
  const requestInterceptor = (request) => {
    if (!["GET", "HEAD", undefined].includes(request.method) && request.credentials === "same-origin") {
      request.headers[data.csrfHeader] = data.csrfToken;
    }
    return request;
  };
  window.ui = window.SwaggerUIBundle({
    url: data.schemaUrl,
    dom_id: "#swagger-ui",
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // The public validator badge would load an image from another origin.
    validatorUrl: null,
    requestInterceptor,
    ...settings,
  });
})();
