#!/bin/sh
# Generate the demo prompts (conf/prompts/{id,en}/*.wav, 8 kHz mono 16-bit) with espeak-ng and
# sox. Needs: apt-get install espeak-ng sox. The WAVs are committed; rerun after editing text.
set -eu
out="$(cd "$(dirname "$0")/.." && pwd)/conf/prompts"

say() {  # say LANG VOICE NAME TEXT
    mkdir -p "$out/$1"
    tmp="$(mktemp --suffix=.wav)"
    espeak-ng -v "$2" -s 150 -w "$tmp" "$4"
    sox "$tmp" -r 8000 -c 1 -b 16 "$out/$1/$3.wav" norm -3
    rm -f "$tmp"
}

say id id greeting "Selamat datang di pusat layanan. Mohon tunggu, panggilan Anda akan segera dilayani."
say id id after-hours "Terima kasih telah menghubungi kami. Layanan kami buka hari Senin sampai Jumat, pukul delapan sampai tujuh belas."
say id id agent-id "Masukkan nomor agen, diakhiri tanda pagar."
say id id pin "Masukkan PIN, diakhiri tanda pagar."
say id id logged-in "Anda telah masuk."
say id id logged-out "Anda telah keluar."
say id id wrong-pin "Nomor agen atau PIN salah."
say id id locked "Terlalu banyak percobaan. Coba lagi nanti."
say id id aux-code "Masukkan kode aktivitas, diakhiri tanda pagar."
say id id done "Terima kasih."
say id id unavailable "Maaf, semua agen sedang sibuk. Silakan hubungi kami kembali."

say en en greeting "Welcome to the service centre. Please hold, your call will be answered shortly."
say en en after-hours "Thank you for calling. We are open Monday to Friday, from eight to five."
say en en agent-id "Enter your agent number, followed by the hash key."
say en en pin "Enter your PIN, followed by the hash key."
say en en logged-in "You are logged in."
say en en logged-out "You are logged out."
say en en wrong-pin "Wrong agent number or PIN."
say en en locked "Too many attempts. Try again later."
say en en aux-code "Enter the activity code, followed by the hash key."
say en en done "Thank you."
say en en unavailable "Sorry, all agents are busy. Please call again later."
