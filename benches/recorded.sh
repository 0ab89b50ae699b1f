# Sourced by the bench scripts (from the project root): the recorded-stems
# workload of issue 15 — what users actually run. Eight stereo stems at
# 44.1 kHz, 24-bit (four FLAC, four WAV), shaped like music (tones with
# vibrato and tremolo over pink noise, different per stem), rendered to a
# 48 kHz stereo song: five zero-padded, two looped, one truncated, a
# 4th-order 8 kHz low-pass on four, mixed, nine float WAVs (eight stems and
# the master), no archive. The same work is scripted for SoX (`rate`, i.e.
# libsoxr) and FFmpeg (`aresample=resampler=soxr`).
#
# The fixtures are generated (about 430 MB for 4 minutes), never committed.

# name ext seconds-below-T align lowpass gain base-frequency
rec_stems="pad1:flac:10:zero-pad:1:0.3:110 pad2:wav:6:zero-pad:0:0.25:165 pad3:flac:4:zero-pad:1:0.2:220 pad4:wav:2:zero-pad:0:0.2:330 pad5:flac:8:zero-pad:1:0.15:440 loop1:wav:60:loop:0:0.2:82.5 loop2:flac:50:loop:1:0.15:247.5 cut:wav:-10:truncate:0:0.2:550"

# rec_fixtures DIR T: writes the eight stems for a song of T seconds into
# DIR (kept when already there with the right length).
rec_fixtures() {
  local dir=$1 t=$2 s name ext below align lp g f len
  mkdir -p "$dir"
  for s in $rec_stems; do
    IFS=: read -r name ext below align lp g f <<<"$s"
    len=$((t - below))
    [ -s "$dir/$name.$ext" ] && [ "$(soxi -D "$dir/$name.$ext")" = "$len.000000" ] && continue
    # Left and right differ (a fifth apart, other tremolo rates) so the
    # stereo image is not mono; pink noise at -24 dB keeps FLAC honest.
    sox -n -r 44100 -b 24 -c 2 "$dir/$name.$ext" synth "$len" \
      sine "$f" sine "$(python3 -c "print($f * 1.5)")" \
      synth pinknoise mix pinknoise mix \
      synth sine amod 0.5 sine amod 0.7 \
      gain -8 tremolo 3.7 30 &
  done
  wait
}

# rec_manifest DIR T: the stemflow manifest for the fixtures in DIR.
rec_manifest() {
  local dir=$1 t=$2 s name ext below align lp g f
  printf '[defaults]\nsample_rate = 48000\nformat = "float"\nchannels = 2\nseed = 1\n\n'
  printf '[[songs]]\nid = "recorded"\nbpm = 120\nmeter = "4/4"\nduration = %s\narchive = ""\n' "$t"
  for s in $rec_stems; do
    IFS=: read -r name ext below align lp g f <<<"$s"
    printf '\n[[songs.stems]]\nname = "%s"\nsource = { type = "file", path = "%s" }\nalign = "%s"\nrole = "melodic"\ngain = %s\n' \
      "$name" "$dir/$name.$ext" "$align" "$g"
    if [ "$lp" = 1 ]; then
      printf 'effects = [{ type = "lowpass", cutoff = 8000.0, order = 4 }]\n'
    fi
  done
}

# rec_sox DIR T OUT: the same work as a SoX script (stems in parallel).
rec_sox() {
  local dir=$1 t=$2 out=$3 s name ext below align lp g f fx parts=""
  for s in $rec_stems; do
    IFS=: read -r name ext below align lp g f <<<"$s"
    fx="rate 48000"
    if [ "$lp" = 1 ]; then fx+=" lowpass -2 8000 0.5412q lowpass -2 8000 1.3066q"; fi
    case $align in
      zero-pad) fx+=" pad 0 $below" ;;
      loop) fx+=" repeat 1 trim 0 $t" ;;
      truncate) fx+=" trim 0 $t fade t 0 $t 0.01" ;;
    esac
    echo "sox '$dir/$name.$ext' -e floating-point -b 32 '$out/sox-$name.wav' $fx &"
    parts+=" -v $g '$out/sox-$name.wav'"
  done
  echo "wait"
  echo "sox -m $parts -e floating-point -b 32 '$out/sox-master.wav'"
}

# rec_ffmpeg DIR T OUT: the same work as one FFmpeg filter graph.
rec_ffmpeg() {
  local dir=$1 t=$2 out=$3 s name ext below align lp g f i=0
  local inputs="" chains="" mixin="" outs="" weights="" c
  for s in $rec_stems; do
    IFS=: read -r name ext below align lp g f <<<"$s"
    inputs+=" -i '$dir/$name.$ext'"
    c="[$i:a]aresample=48000:resampler=soxr"
    if [ "$lp" = 1 ]; then c+=",lowpass=f=8000:p=2:t=q:w=0.5412,lowpass=f=8000:p=2:t=q:w=1.3066"; fi
    case $align in
      zero-pad) c+=",apad=whole_dur=$t" ;;
      loop) c+=",aloop=loop=1:size=2e9,atrim=duration=$t" ;;
      truncate) c+=",atrim=duration=$t,afade=t=out:st=$(python3 -c "print($t - 0.01)"):d=0.01" ;;
    esac
    chains+="$c,asplit=2[s$i][o$i];"
    mixin+="[s$i]"; weights+="$g "
    outs+=" -map [o$i] -c:a pcm_f32le '$out/ff-$name.wav'"; i=$((i + 1))
  done
  echo "ffmpeg -v error -y $inputs -filter_complex '${chains}${mixin}amix=inputs=$i:weights=${weights% }:normalize=0[m]' -map [m] -c:a pcm_f32le '$out/ff-master.wav' $outs"
}
