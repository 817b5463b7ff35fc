#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Desktop integration, checked by the tools distributions and Flathub use:
the .desktop file (desktop-file-validate), the AppStream metainfo
(appstream-util validate-relax), the GSettings schema (glib-compile-schemas
--strict), the MIME type for "Open With" (update-mime-database), the icons,
the man pages (groff warnings), --version/--help of both programs, the
gettext file list and the Flatpak manifest. TAP output.

usage: test_desktop.py SOURCE_ROOT BUILD_ROOT VERSION"""
import json, os, re, shutil, subprocess, sys, tempfile
import xml.etree.ElementTree as ET

src, build, version = sys.argv[1:4]
APP = "org.glassbox.Glassbox"
results = []


def check(name):
    def wrap(fn):
        try:
            problems = fn() or []
        except Exception as e:  # a check that cannot run fails
            problems = ["%s: %s" % (type(e).__name__, e)]
        results.append((name, problems))
        return fn
    return wrap


def run(*argv, env=None):
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    return r.returncode, r.stdout + r.stderr


def tool(name):
    path = shutil.which(name)
    if path is None:
        raise RuntimeError("%s is not installed (tools/setup.sh installs it)" % name)
    return path


desktop = os.path.join(build, "data", APP + ".desktop")
metainfo = os.path.join(build, "data", APP + ".metainfo.xml")


@check("desktop-file-validate")
def _():
    rc, out = run(tool("desktop-file-validate"), desktop)
    return [] if rc == 0 and "error" not in out else [out]


@check("appstream-util validate-relax")
def _():
    rc, out = run(tool("appstream-util"), "validate-relax", "--nonet", metainfo)
    return [] if rc == 0 else [out]


@check("glib-compile-schemas --strict")
def _():
    rc, out = run(tool("glib-compile-schemas"), "--strict", "--dry-run", os.path.join(src, "data"))
    return [] if rc == 0 and not out.strip() else [out]


def desktop_keys():
    keys = {}
    for line in open(desktop, encoding="utf-8"):
        if "=" in line and not line.startswith("#"):
            k, v = line.rstrip("\n").split("=", 1)
            keys[k] = v
    return keys


@check("desktop file, metainfo, MIME type and icon agree")
def _():
    problems = []
    keys = desktop_keys()
    root = ET.parse(metainfo).getroot()
    if root.findtext("id") != APP:
        problems.append("metainfo id %r" % root.findtext("id"))
    if root.findtext("launchable") != APP + ".desktop":
        problems.append("launchable %r" % root.findtext("launchable"))
    rel = root.find("releases/release")
    if rel is None or rel.get("version") != version:
        problems.append("newest release is not %s" % version)
    if root.find("content_rating").get("type") != "oars-1.1":
        problems.append("no OARS 1.1 content rating")
    for shot in root.iter("image"):
        if not os.path.exists(os.path.join(src, shot.text)) and not shot.text.startswith("https://"):
            problems.append("screenshot %s does not exist" % shot.text)
    if keys.get("Icon") != APP or not os.path.exists(os.path.join(src, "icons", APP + ".svg")):
        problems.append("Icon=%s has no icons/%s.svg" % (keys.get("Icon"), APP))
    mime = ET.parse(os.path.join(src, "data", APP + ".mime.xml")).getroot()
    ns = "{http://www.freedesktop.org/standards/shared-mime-info}"
    types = [t.get("type") for t in mime.iter(ns + "mime-type")]
    if keys.get("MimeType") != "".join(t + ";" for t in types):
        problems.append("MimeType=%s but the MIME package defines %s" % (keys.get("MimeType"), types))
    if "%F" not in keys.get("Exec", "") and "%U" not in keys.get("Exec", ""):
        problems.append("Exec takes no files: %s" % keys.get("Exec"))
    return problems


@check("update-mime-database: *.safetensors is application/x-safetensors")
def _():
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(tmp + "/mime/packages")
        shutil.copy(os.path.join(src, "data", APP + ".mime.xml"), tmp + "/mime/packages/" + APP + ".xml")
        rc, out = run(tool("update-mime-database"), tmp + "/mime")
        globs = open(tmp + "/mime/globs2").read() if rc == 0 else ""
        return [] if "application/x-safetensors:*.safetensors" in globs else [out, globs]


@check("icons: app icon 128x128 in colour, symbolic icons one colour at 16x16")
def _():
    problems = []
    app = ET.parse(os.path.join(src, "icons", APP + ".svg")).getroot()
    if (app.get("width"), app.get("height"), app.get("viewBox")) != ("128", "128", "0 0 128 128"):
        problems.append("app icon is not 128x128")
    symbolic = [os.path.join(src, "icons", APP + "-symbolic.svg")]
    actions = os.path.join(src, "icons", "actions")
    symbolic += [os.path.join(actions, f) for f in sorted(os.listdir(actions))]
    for path in symbolic:
        root = ET.parse(path).getroot()
        if root.get("viewBox") != "0 0 16 16" or not path.endswith("-symbolic.svg"):
            problems.append("%s: not a 16x16 -symbolic icon" % path)
        colours = set(re.findall(r'(?:fill|stroke)="(#[0-9a-fA-F]{3,6})"', open(path).read()))
        if colours != {"#2e3436"}:
            problems.append("%s: colours %s (symbolic icons use #2e3436 only)" % (path, colours))
    gresource = open(os.path.join(src, "data", "glassbox.gresource.xml")).read()
    for f in os.listdir(actions):
        if "icons/scalable/actions/" + f not in gresource:
            problems.append("%s is not in the GResource" % f)
    return problems


@check("man pages: groff finds no problem, versions match")
def _():
    problems = []
    for page in ("glassbox.1", "glassbox-cli.1"):
        path = os.path.join(src, "data", page)
        rc, out = run(tool("groff"), "-man", "-ww", "-z", path)
        if rc != 0 or out.strip():
            problems.append("%s: %s" % (page, out))
        if '"Glassbox %s"' % version not in open(path).read():
            problems.append("%s does not say version %s" % (page, version))
    return problems


@check("glassbox-cli man page lists every command")
def _():
    rc, out = run(os.path.join(build, "app", "glassbox-cli"), "--help")
    commands = re.findall(r"^  (\S+)\s{2,}", out.split("Commands:")[1], re.M)
    page = open(os.path.join(src, "data", "glassbox-cli.1")).read().replace("\\-", "-")
    missing = [c for c in commands if not re.search(r"^\.BI? \"?%s\b" % re.escape(c), page, re.M)]
    return ["not in glassbox-cli.1: %s" % missing] if missing or not commands else []


@check("glassbox --version and --help (no display needed)")
def _():
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    gui = os.path.join(build, "app", "glassbox")
    problems = []
    rc, out = run(gui, "--version", env=env)
    if rc != 0 or out.strip() != "glassbox " + version:
        problems.append("--version: %d %r" % (rc, out))
    rc, out = run(gui, "--help", env=env)
    if rc != 0 or "--model" not in out or "--version" not in out or "FILE.safetensors" not in out:
        problems.append("--help: %d %r" % (rc, out))
    rc, out = run(os.path.join(build, "app", "glassbox-cli"), "--version")
    if rc != 0 or out.strip() != "glassbox-cli " + version:
        problems.append("glassbox-cli --version: %d %r" % (rc, out))
    return problems


@check("po/POTFILES lists exactly the files with translatable strings")
def _():
    listed = [l.strip() for l in open(os.path.join(src, "po", "POTFILES")) if l.strip() and not l.startswith("#")]
    problems = ["%s does not exist" % f for f in listed if not os.path.exists(os.path.join(src, f))]
    marked = set()
    for top in ("app", "ui", "engine", "data"):
        for dirpath, _, files in os.walk(os.path.join(src, top)):
            for f in files:
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, src)
                if f.endswith(".c") and re.search(r'\bN?_\("', open(path, errors="replace").read()):
                    marked.add(rel)
                elif f.endswith(".ui") and 'translatable="yes"' in open(path).read():
                    marked.add(rel)
    problems += ["%s has translatable strings but is not in po/POTFILES" % f for f in sorted(marked - set(listed))]
    return problems


@check("xgettext extracts the strings of every file in po/POTFILES")
def _():
    listed = [l.strip() for l in open(os.path.join(src, "po", "POTFILES")) if l.strip() and not l.startswith("#")]
    with tempfile.TemporaryDirectory() as tmp:
        pot = os.path.join(tmp, "glassbox.pot")
        rc, out = run(tool("xgettext"), "--from-code=UTF-8", "--add-comments", "-k_", "-kN_", "-o", pot,
                      "-D", src, *listed)
        if rc != 0:
            return [out]
        text = open(pot, encoding="utf-8").read()
    problems = []
    for f in listed:
        if "#: %s:" % f not in text:
            problems.append("nothing extracted from %s" % f)
    for want in ("Choose a model", "Language Model Inspector", "Arrow keys move a crosshair",
                 "Recently opened model folders", "See inside a transformer language model"):
        if 'msgid "%s' % want not in text:
            problems.append("%r not extracted" % want)
    return problems


@check("flatpak manifest: valid JSON, GNOME 43 runtime, pinned sources, finish-args")
def _():
    path = os.path.join(src, "flatpak", APP + ".json")
    m = json.load(open(path))
    problems = []
    if m.get("id", m.get("app-id")) != APP or m.get("command") != "glassbox":
        problems.append("id/command")
    if (m.get("runtime"), m.get("runtime-version")) != ("org.gnome.Platform", "43"):
        problems.append("runtime %s %s (GTK 4.8 and libadwaita 1.2 are GNOME 43)" % (m.get("runtime"), m.get("runtime-version")))
    want = {"--share=ipc", "--socket=wayland", "--socket=fallback-x11", "--device=dri",
            "--filesystem=~/.cache/huggingface:ro"}
    if not want <= set(m.get("finish-args", [])):
        problems.append("finish-args lack %s" % sorted(want - set(m.get("finish-args", []))))
    names = [mod["name"] for mod in m["modules"]]
    if names[-1] != "glassbox" or "openblas" not in names:
        problems.append("modules %s" % names)
    for mod in m["modules"]:
        for s in mod.get("sources", []):
            if s["type"] in ("archive", "file") and not re.fullmatch(r"[0-9a-f]{64}", s.get("sha256", "")):
                problems.append("%s: source %s has no sha256" % (mod["name"], s.get("url")))
            if s["type"] == "git" and not s.get("commit"):
                problems.append("%s: git source not pinned to a commit" % mod["name"])
    return problems


@check("flatpak-builder --show-manifest reads the manifest without a warning")
def _():
    builder = shutil.which("flatpak-builder")
    if builder is None:  # tools/setup.sh installs it; without it, say so
        raise RuntimeError("flatpak-builder is not installed")
    path = os.path.join(src, "flatpak", APP + ".json")
    with tempfile.TemporaryDirectory() as tmp:  # its state folder goes there
        r = subprocess.run([builder, "--show-manifest", path], capture_output=True, text=True, cwd=tmp)
    if r.returncode != 0 or "WARNING" in r.stderr or "rror" in r.stderr:
        return [r.stderr]
    if json.loads(r.stdout) != json.load(open(path)):
        return ["flatpak-builder's reading differs from the file (a key it does not know?)"]
    return []


print("1..%d" % len(results))
failed = 0
for i, (name, problems) in enumerate(results, 1):
    for p in problems:
        for line in str(p).strip().splitlines():
            print("# " + line)
    print("%s %d - %s" % ("not ok" if problems else "ok", i, name))
    failed += bool(problems)
sys.exit(1 if failed else 0)
