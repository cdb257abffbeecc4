#!/bin/sh
# build-deb.sh BINARY VERSION OUTDIR: stage the ringslot package under
# OUTDIR/deb/debian/ringslot (the debian/<package> layout dpkg-shlibdeps
# expects) and build OUTDIR/ringslot_VERSION_ARCH.deb with dpkg-deb.
# Called by `make deb`; run from the source tree's root.
#
# Depends: is computed by dpkg-shlibdeps from the staged binary (each
# library's package and minimum version from its shlibs/symbols files),
# plus adduser for postinst.
set -eu

bin=$1 version=$2 out=$3
arch=$(dpkg --print-architecture)
stage=$out/deb
root=$stage/debian/ringslot
doc=$root/usr/share/doc/ringslot
# The changelog's date: the last commit's, so a rebuild gives the same bytes.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

rm -rf "$stage"
install -d "$root/DEBIAN" "$root/usr/share/man/man1" "$doc"
install -D -m 0755 "$bin" "$root/usr/bin/ringslot"
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    "$root/usr/bin/ringslot"
# redis-cluster-proxy's name, as `make install` provides it.
ln -s ringslot "$root/usr/bin/redis-cluster-proxy"
gzip -9n < deploy/ringslot.1 > "$root/usr/share/man/man1/ringslot.1.gz"
ln -s ringslot.1.gz "$root/usr/share/man/man1/redis-cluster-proxy.1.gz"
install -D -m 0644 deploy/ringslot.service "$root/lib/systemd/system/ringslot.service"
install -D -m 0644 deploy/ringslot.conf "$root/etc/ringslot/ringslot.conf"
install -D -m 0644 deploy/debian/logrotate "$root/etc/logrotate.d/ringslot"
install -D -m 0644 deploy/debian/lintian-overrides "$root/usr/share/lintian/overrides/ringslot"
{ cat deploy/debian/copyright.head
  sed 1,4d LICENSE | sed 's/^$/./; s/^/ /'; } > "$doc/copyright"
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$(date -R -u -d "@$epoch")/" \
    deploy/debian/changelog.in | gzip -9n > "$doc/changelog.Debian.gz"
chmod 0644 "$doc/copyright" "$doc/changelog.Debian.gz" "$root/usr/share/man/man1/ringslot.1.gz"
install -m 0755 deploy/debian/postinst deploy/debian/postrm "$root/DEBIAN/"
install -m 0644 deploy/debian/conffiles "$root/DEBIAN/"

printf 'Source: ringslot\n\nPackage: ringslot\nArchitecture: any\n' > "$stage/debian/control"
depends=$(cd "$stage" && dpkg-shlibdeps -O debian/ringslot/usr/bin/ringslot |
          sed -n 's/^shlibs:Depends=//p')
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    -e "s/@DEPENDS@/$depends/" deploy/debian/control.in > "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
     xargs md5sum > DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"

deb=$out/ringslot_${version}_$arch.deb
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
