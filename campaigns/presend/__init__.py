"""The pre-send check's probes: DNS authentication records, link reachability and the
content heuristics. Pure functions over a campaign's rendered sample and its sender;
``campaigns/services/presend.py`` assembles them into the review page's check.
"""
