#!/bin/sh
# tools/man.sh [ DIR ]: writes the manual pages, generated from doc/*.md.
#
# Writes DIR/manN/NAME.N for every page listed below (default DIR: man/
# at the top of the tree, which it replaces; any other DIR must not exist
# yet), with lowdown (apt-get install lowdown) turning the Markdown into
# man(7) roff. The doc/ pages are the one source: each starts with the
# title `# NAMES - DESCRIPTION`, which becomes the page's NAME line; the
# first name names the page, and every other name is a symbolic link to
# it (ipcrun.1 -> ipcdo.1: Debian's policy prefers links to `.so` pages,
# and `man -l` follows a link from any directory, not a `.so`).
#
# What a manual page needs and the Markdown lacks is added here: the .TH
# line (name, section, the version in Cargo.toml: no date, so that the
# same sources always give the same pages), SYNOPSIS first and the
# page's opening paragraphs as DESCRIPTION, upper-case section headings,
# links to other pages turned into references (ipcserver(1)), links to
# doc pages that have no manual page turned into their file names, and a
# SEE ALSO section that lists both.
#
# The pages are committed in man/: tests/man.rs fails when they are not
# what this script writes from the doc pages, or when man warns about one.
#
# Exit codes: 0 done, 100 usage or a doc page it cannot convert, 111
# lowdown missing or a system error.
set -eu

me=tools/man.sh
fatal() {
    echo "$me: fatal: $2" >&2
    exit "$1"
}

# SECTION DOC-PAGE. Section 1 for every program, servers included, as
# Debian files ucspi-tcp's and ucspi-unix's; the rules format is a file
# format (5), the environment an overview (7).
pages='
1 ipcserver
1 ipcserver-socketbinder
1 ipcapplyuidgid
1 ipcserverd
1 ipcserver-access
1 ipcclient
1 ipccat
1 ipcconnect
1 ipcrules
1 ipcrulescheck
1 ipcexec
1 ipccommand
1 ipcdo
1 ipcexecrules
1 ipcexecrulescheck
1 ipcexec-config
1 ipclisten
1 ipcaccept
1 ipcprint
1 ipcperl
5 rules
7 environment
'

case $# in
    0) out= ;;
    1) out=$1 ;;
    *) echo "$me: usage: $me [ DIR ]" >&2; exit 100 ;;
esac

top=$(cd "$(dirname "$0")/.." && pwd)
command -v lowdown >/dev/null 2>&1 || fatal 111 "lowdown not found (apt-get install lowdown)"
if [ -z "$out" ]; then
    out=$top/man
elif [ -e "$out" ] || [ -L "$out" ]; then
    fatal 100 "$out already exists"
fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$top/Cargo.toml" | head -n 1)
[ -n "$version" ] || fatal 111 "no version in $top/Cargo.toml"

# The pages are made in a new directory beside DIR, which then takes its
# place: a page that fails to convert leaves DIR as it was.
work=$(mktemp -d)
new=$(mktemp -d "$(dirname "$out")/.man.XXXXXX")
trap 'rm -rf "$work" "$new"' EXIT

# The index the links are resolved with: DOC-PAGE SECTION NAME,NAME...
echo "$pages" | while read -r section page; do
    [ -n "$page" ] || continue
    title=$(head -n 1 "$top/doc/$page.md") || fatal 111 "unable to read doc/$page.md"
    case $title in
        '# '*' - '*) ;;
        *) fatal 100 "doc/$page.md: the title is not '# NAMES - DESCRIPTION': $title" ;;
    esac
    names=${title#'# '}
    names=${names%%' - '*}
    echo "$page $section $(echo "$names" | tr -d ' ')"
done >"$work/index"

# Rewrites one doc page (after the index) as the Markdown of its manual
# page's body, for lowdown.
body='
function fail(why) {
    print "tools/man.sh: fatal: doc/" page ".md:" FNR ": " why > "/dev/stderr"
    failed = 1
    exit 100
}
# Upper case outside code spans: options keep their case.
function heading(text,    parts, n, i, s) {
    n = split(text, parts, "`")
    s = ""
    for (i = 1; i <= n; i++)
        s = s (i > 1 ? "`" : "") (i % 2 ? toupper(parts[i]) : parts[i])
    return s
}
function reference(name, sect) {
    if (!((name, sect) in cited)) {
        cited[name, sect] = 1
        cites[++ncites] = sect " " name
    }
    return "**" name "**(" sect ")"
}
function link(text, target,    file, plain) {
    if (target ~ /^#/)
        return text
    if (target ~ /^https?:/)
        return "[" text "](" target ")"
    file = target
    sub(/#.*/, "", file)
    if (file !~ /^[a-z0-9-]+\.md$/)
        fail("a link to " target ": only doc pages and web pages can be converted")
    file = substr(file, 1, length(file) - 3)
    plain = text
    gsub(/`/, "", plain)
    if (plain in section_of)
        return reference(plain, section_of[plain])
    if (file in first_name_of) {
        plain = reference(first_name_of[file], section_of[first_name_of[file]])
        return text == file ".md" ? plain : text " (" plain ")"
    }
    if (!(file in other_cited)) {
        other_cited[file] = 1
        others[++nothers] = "doc/" file ".md"
    }
    return text == file ".md" ? text : text " (doc/" file ".md)"
}
function links(line,    out, text, target, mid) {
    out = ""
    while (match(line, /\[[^]]*\]\([^)]*\)/)) {
        mid = index(substr(line, RSTART), "](")
        text = substr(line, RSTART + 1, mid - 2)
        target = substr(line, RSTART + mid + 1, RLENGTH - mid - 2)
        out = out substr(line, 1, RSTART - 1) link(text, target)
        line = substr(line, RSTART + RLENGTH)
    }
    return out line
}
# The index: the first name of each page, and the section of every name.
FILENAME != doc {
    n = split($3, names, ",")
    first_name_of[$1] = names[1]
    for (i = 1; i <= n; i++)
        section_of[names[i]] = $2
    if ($1 == page)
        for (i = 1; i <= n; i++)
            own[names[i]] = 1
    next
}
FNR == 1 { next }
/^```/ { fenced = !fenced }
!fenced && /^## / {
    part = $0 == "## Synopsis" ? "synopsis" : "rest"
    line = "# " heading(substr($0, 4))
}
!fenced && /^### / { line = "#" substr($0, 4) }
!fenced && !/^##/ { line = links($0) }
fenced { line = $0 }
{
    if (part == "synopsis") synopsis = synopsis line "\n"
    else if (part == "rest") rest = rest line "\n"
    else intro = intro line "\n"
}
END {
    if (failed) exit 100
    printf "%s# DESCRIPTION\n%s%s", synopsis, intro, rest
    # SEE ALSO: by section, then name, as man-pages(7) has it.
    for (i = 1; i <= ncites; i++)
        for (j = i + 1; j <= ncites; j++)
            if (cites[j] < cites[i]) { t = cites[i]; cites[i] = cites[j]; cites[j] = t }
    see = ""
    for (i = 1; i <= ncites; i++) {
        split(cites[i], c, " ")
        if (!(c[2] in own))
            see = see (see == "" ? "" : ",\n") "**" c[2] "**(" c[1] ")"
    }
    if (see == "" && nothers == 0) exit
    printf "\n# SEE ALSO\n\n"
    if (see != "") printf "%s\n\n", see
    if (nothers > 0) {
        printf "%s", others[1]
        for (i = 2; i <= nothers; i++) printf "%s %s", (i == nothers ? " and" : ","), others[i]
        printf ", in the ucspi-ipc sources.\n"
    }
}
'

# Rewrites lowdown's tables for a terminal. lowdown spreads a table over
# the whole line (`expand`, which widens the gaps, not the columns) and
# puts every cell in a text block (T{ T}), which tbl makes a fixed
# fraction of the line wide, wrapping short cells and warning about words
# longer than that. Here a column whose cells are all short single lines
# is as wide as its widest cell, and the others (`x`) share what is left.
tables='
function visible(s,    t) {
    t = s
    gsub(/\\f(\[[^]]*\]|\(..|.)/, "", t)
    gsub(/\\(\[[^]]*\]|\(..|.)/, "x", t)
    return length(t)
}
function flush(    r, c, n, f, out, narrow, width, dot) {
    for (c = 1; c <= cols; c++) {
        width[c] = 0
        for (r = 1; r <= rows; r++) {
            if (lines[r, c] > 1 || index(cell[r, c], "|")) width[c] = 1000
            else if (visible(cell[r, c]) > width[c]) width[c] = visible(cell[r, c])
        }
        narrow[c] = width[c] <= 30
    }
    for (n = 1; n <= specs; n++) {
        split(spec[n], f, " ")
        out = ""
        for (c = 1; c <= cols; c++) {
            dot = sub(/\.$/, "", f[c])
            out = out (c > 1 ? " " : "") f[c] (narrow[c] ? "" : "x") (dot ? "." : "")
        }
        print out
    }
    for (r = 1; r <= rows; r++) {
        out = ""
        for (c = 1; c <= cols; c++)
            out = out (c > 1 ? "|" : "") (narrow[c] ? "\\&" cell[r, c] : "T{\n" cell[r, c] "\nT}")
        print out
    }
}
function fail(why) {
    print "tools/man.sh: fatal: " page ": lowdown wrote a table this script cannot read: " why > "/dev/stderr"
    exit 100
}
/^\.TS$/ { state = "options"; print; next }
state == "options" { sub(/ expand/, ""); print; state = "format"; specs = 0; next }
state == "format" {
    spec[++specs] = $0
    if (/\.$/) {
        state = "rows"
        rows = cols = 0
        split("", cell)
        split("", lines)
    }
    next
}
# lowdown leaves no space between a table and the paragraph after it.
state == "rows" && /^\.TE$/ { flush(); print; print ".sp"; state = ""; next }
state == "rows" && $0 == "T{" { if (open) fail("T{ in a cell"); rows++; col = 1; open = 1; next }
state == "rows" && $0 == "T}|T{" { if (!open) fail("T}|T{ out of a cell"); col++; next }
state == "rows" && $0 == "T}" {
    if (!open) fail("T} out of a cell")
    open = 0
    if (cols && col != cols) fail("rows of different lengths")
    cols = col
    next
}
state == "rows" {
    if (!open) fail("text out of a cell: " $0)
    cell[rows, col] = lines[rows, col]++ ? cell[rows, col] "\n" $0 : $0
    next
}
{ print }
'

while read -r page section names; do
    mkdir -p "$new/man$section"
    title=$(head -n 1 "$top/doc/$page.md")
    description=${title#*' - '}
    case $description in
        *[\\\`*_\[]*) fatal 100 "doc/$page.md: the description in the title must be plain text: $description" ;;
    esac
    first=${names%%,*}
    awk -v page="$page" -v doc="$top/doc/$page.md" "$body" "$work/index" "$top/doc/$page.md" >"$work/$page.md"
    lowdown -tman --parse-no-metadata --out-no-smarty "$work/$page.md" >"$work/$page.lowdown" \
        || fatal 111 "lowdown failed on doc/$page.md"
    # Code in bold (constant-width bold when typeset): in a terminal,
    # lowdown's constant-width font is the roman of the text around it.
    awk -v page="doc/$page.md" "$tables" "$work/$page.lowdown" >"$work/$page.tables"
    sed 's/\\fC/\\f(CB/g' "$work/$page.tables" >"$work/$page.roff"
    # Without a coding line, man may read a page as Latin-1.
    if LC_ALL=C grep -n "$(printf '[\200-\377]')" "$top/doc/$page.md" >&2; then
        fatal 100 "doc/$page.md: the lines above are not ASCII, which a manual page cannot carry"
    fi
    {
        # The first line asks man to run tbl, for the tables.
        printf '%s\n' "'\\\" t"
        printf '%s\n' ".\\\" Generated from doc/$page.md by tools/man.sh: edit that page, not this one."
        printf '.TH "%s" "%s" "" "ucspi-ipc %s" "ucspi-ipc"\n' "$(echo "$first" | tr 'a-z' 'A-Z')" "$section" "$version"
        # Left-justified and unhyphenated: options and names must not be
        # split, and narrow table columns cannot be justified. HY too:
        # every .EE sets hyphenation back to it.
        echo '.ad l'
        echo '.nr HY 0'
        echo '.nh'
        echo '.SH NAME'
        printf '%s \\- %s\n' "$(echo "$names" | sed 's/,/, /g')" "$description"
        cat "$work/$page.roff"
    } >"$new/man$section/$first.$section"
    for alias in $(echo "$names" | tr ',' ' '); do
        [ "$alias" = "$first" ] || ln -s "$first.$section" "$new/man$section/$alias.$section"
    done
done <"$work/index"

[ "$out" != "$top/man" ] || rm -rf "$out"
mv "$new" "$out" || fatal 111 "unable to move the pages to $out"
chmod 755 "$out"
echo "$me: wrote $(find "$out" -type f | wc -l) pages in $out"
