"""Build labels.json from the expert classifier's output plus the reviewed corrections.

    perl sisimai_labels.pl */*.eml > sisimai-4.25.15.json   # Debian libsisimai-perl 4.25.15
    python3 make_labels.py                                  # writes labels.json

Sisimai's reasons map to LuxMail's (campaigns/sending/feedback/types.py) through SISIMAI
below (documented in docs/bounces.md); review.json then corrects single files, each with
a note saying why. Nothing here reads LuxMail's parser: labels never come from it.
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SISIMAI = {
    "userunknown": "user_unknown",
    "hostunknown": "host_unknown",
    "notaccept": "host_unknown",
    "hasmoved": "mailbox_disabled",
    "suspend": "suspended",
    "mailboxfull": "mailbox_full",
    "exceedlimit": "message_too_big",
    "mesgtoobig": "message_too_big",
    "contenterror": "content_rejected",
    "virusdetected": "content_rejected",
    "spamdetected": "spam_detected",
    "policyviolation": "policy",
    "notcompliantrfc": "policy",
    "rejected": "policy",
    "filtered": "policy",
    "securityerror": "policy",
    "authfailure": "auth_failure",
    "blocked": "blocked",
    "badreputation": "blocked",
    "requireptr": "blocked",
    "toomanyconn": "rate_limited",
    "speeding": "rate_limited",
    "norelaying": "relaying_denied",
    "syntaxerror": "syntax_error",
    "expired": "expired",
    "networkerror": "network_error",
    "systemerror": "system_error",
    "systemfull": "system_error",
    "mailererror": "system_error",
    "vacation": "vacation",
    "undefined": "undefined",
    "onhold": "undefined",
}
HARD = {"user_unknown", "host_unknown", "mailbox_disabled"}


def main() -> None:
    expert = json.loads((HERE / "sisimai-4.25.15.json").read_text())
    review = {r["file"]: r for r in json.loads((HERE / "review.json").read_text())}
    labels = []
    for name in sorted(expert):
        found = expert[name]
        label: dict = {"file": name, "labeller": "sisimai-4.25.15"}
        if not found:
            label.update(kind="unrecognized", findings=[])
        elif all(e["reason"] == "vacation" for e in found):
            label.update(kind="auto_reply", findings=[])
        elif any(e["feedbacktype"] for e in found):
            label.update(kind="complaint", findings=[])
        else:
            label["kind"] = "bounce"
            label["findings"] = [
                {
                    "recipient": e["recipient"].lower(),
                    "status": e["status"],
                    "reason": SISIMAI[e["reason"]],
                    "hard": SISIMAI[e["reason"]] in HARD,
                    "sisimai_reason": e["reason"],
                }
                for e in found
            ]
        fix = review.get(name)
        if fix:
            label["labeller"] += " + review"
            label["review"] = fix["note"]
            if "kind" in fix:
                label["kind"] = fix["kind"]
                label["findings"] = fix.get("findings", [])
            for finding in label["findings"]:
                for key in ("reason", "status"):
                    wanted = fix.get("recipients")
                    if key in fix and (not wanted or finding["recipient"] in wanted):
                        finding[key] = fix[key]
                if finding.get("reason"):
                    finding["hard"] = finding["reason"] in HARD
        labels.append(label)
    (HERE / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")


if __name__ == "__main__":
    main()
