"""Writes the OUI subset of consumer router makers used by the `suspected_router` check.

Source: the IEEE MA-L registry as shipped by Debian's `ieee-data` package
(/usr/share/ieee-data/oui.csv). Usage:
    python3 rules/network/generate-oui-subset.py /usr/share/ieee-data/oui.csv > rules/network/consumer-router-ouis.csv

The makers are those whose products are home/SOHO routers and Wi-Fi access points sold at retail
in China and elsewhere. Makers whose prefixes mostly belong to PCs, phones or enterprise network
gear the center itself runs (ASUSTek, Xiaomi, Huawei, H3C, Ruijie, Cisco) are left out on
purpose: a match there says little about a private router.
"""
import csv
import re
import sys

MAKERS = [
    ("TP-Link", r"^TP-LINK"),
    ("Mercury", r"MERCURY COMMUNICATION"),
    ("FAST", r"^(SHENZHEN )?FAST (TECHNOLOGIES|COMMUNICATION)"),
    ("Tenda", r"TENDA"),
    ("Phicomm", r"PHICOMM"),
    ("Netcore", r"NETCORE"),
    ("HiWiFi", r"HIWIFI"),
    ("Qihoo 360", r"QIHOO"),
    ("NETGEAR", r"^NETGEAR"),
    ("D-Link", r"^D-LINK"),
    ("Linksys", r"LINKSYS"),
    ("Belkin", r"^BELKIN"),
]


def main():
    reader = csv.reader(open(sys.argv[1], encoding="utf-8"))
    next(reader)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["oui", "maker", "organization"])
    rows = []
    for registry, assignment, organization, *_ in reader:
        if registry != "MA-L":
            continue
        for maker, pattern in MAKERS:
            if re.search(pattern, organization.strip(), re.IGNORECASE):
                a = assignment.lower()
                rows.append((f"{a[0:2]}:{a[2:4]}:{a[4:6]}", maker, organization.strip()))
                break
    for row in sorted(rows):
        out.writerow(row)


if __name__ == "__main__":
    main()
