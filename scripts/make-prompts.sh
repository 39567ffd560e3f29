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

say id id greeting "Selamat datang di pusat layanan."
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

say en en greeting "Welcome to the service centre."
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

# Menu (IVR-2), announcements while queued (ACD-2), survey (ACC-8).
say id id menu "Untuk informasi, tekan satu. Untuk berbicara dengan agen, tekan dua."
say id id info "Pusat layanan kami buka hari Senin sampai Jumat, pukul delapan sampai tujuh belas. Informasi lengkap tersedia di situs web kami."
say id id invalid "Maaf, pilihan tidak dikenal."
say id id you-are-number "Anda berada di antrean nomor"
say id id wait-about "Perkiraan waktu tunggu sekitar"
say id id minutes "menit."
say id id survey "Mohon nilai layanan kami. Tekan satu sampai lima, lima untuk sangat puas."
say id id survey-thanks "Terima kasih atas penilaian Anda."
say en en menu "For information, press one. To speak to an agent, press two."
say en en info "Our service centre is open Monday to Friday, from eight to five. Full information is on our web site."
say en en invalid "Sorry, that is not a valid choice."
say en en you-are-number "You are number"
say en en wait-about "The expected wait is about"
say en en minutes "minutes."
say en en survey "Please rate our service. Press one to five, five for very satisfied."
say en en survey-thanks "Thank you for your rating."
n=0
while [ "$n" -le 20 ]; do
    say id id "number-$n" "$n"
    say en en "number-$n" "$n"
    n=$((n + 1))
done
