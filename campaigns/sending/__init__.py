"""Sending: the queue, the send pipeline, channel choice, transport, bounces, message bytes.

Defines the interfaces the layers above plug into (:mod:`campaigns.sending.hooks`)."""
