"""Transactional: one message to one contact, sent now (``POST /api/v1/messages/``)."""
