"""Content: templates, sandboxed rendering, the fields a template needs, HTML for mail clients."""
