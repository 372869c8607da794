#!/usr/bin/env python3
"""Generate a big rules file for ipcrules, and the same records in the
input format of tinycdb's `cdb -c` (`+klen,dlen:key->data` lines), to
compare the two compilers and check that they agree.

usage: gen_rules.py COUNT RULES_OUT CDBMAKE_OUT

Rule i is `U.G:allow,N=\"i\"` with distinct (U, G) pairs; every tenth is a
deny. Both outputs list the same keys and values in the same order.
"""
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: gen_rules.py COUNT RULES_OUT CDBMAKE_OUT")
    count = int(sys.argv[1])
    with open(sys.argv[2], "w") as rules, open(sys.argv[3], "w") as make:
        for i in range(count):
            key = f"{1000 + i}.{i % 997}"
            if i % 10 == 0:
                rules.write(f"{key}:deny\n")
                value = "D\0"
            else:
                rules.write(f'{key}:allow,N="{i}"\n')
                value = f"+N={i}\0"
            make.write(f"+{len(key)},{len(value)}:{key}->{value}\n")
        make.write("\n")


if __name__ == "__main__":
    main()
