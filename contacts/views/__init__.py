"""The contacts staff UI (server-rendered, HTMX): contacts, lists, custom fields,
segments with the live builder, import and export. Views parse input, call one service
or selector and render (docs/architecture.md rule 1)."""
