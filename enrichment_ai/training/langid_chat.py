"""Hand-written chat sets for :mod:`enrichment_ai.training.langid_eval`.

Written for this project (no licence issue): short chat in each of the 31 default
candidate languages (``Settings.language_candidates``), realistic messages with emoji,
slang, laughter and links, and chat noise that carries no language at all.
"""

from __future__ import annotations

#: Chat messages with no determinable language: correct answer ``und``.
CHAT_NOISE: tuple[str, ...] = (
    "ok", "ok lol", "lol", "lmao", "gg", "xD", "hmm", "haha", "hahaha", "k", "kk", "ty", "np",
    "brb", "mmm", "ahh", "uhh", "+1", "???", "!!!", "...", "12345", "10/10", "😂", "😂😂😂",
    "👍", "❤️🔥", "https://example.com/x", "@user", "<@123456789>", "<:pepe:123456>", ":)",
    "xd lol", "ok ok", "gg wp", "lol ok", "hm?", "ye", "nah", "oof",
    # emoji with skin tones / ZWJ sequences, links, mentions, gamer slang
    "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈🏳️‍🌈", "🔥🔥🔥", "😭😭", "ok 👍", ":D", "^^", "T_T", "?!", "xddd",
    "https://discord.gg/abc123", "www.youtube.com/watch?v=dQw4w9WgXcQ", "<#1234567890>",
    "@everyone", "<a:wave:987654321>", "GG EZ", "1v1", "afk", "pog", "kekw", "w", "L", "+rep",
    "2024-05-01 18:00", "#1", "$$$", "o7", "<3", "xoxo",
)  # fmt: skip

#: Short but clear chat messages with their language: must not become ``und``.
CHAT_SHORT: tuple[tuple[str, str], ...] = (
    ("thank you so much", "en"), ("see you tomorrow", "en"), ("where are you?", "en"),
    ("this is great", "en"), ("muchas gracias", "es"), ("nos vemos mañana", "es"),
    ("¿dónde estás?", "es"), ("merci beaucoup", "fr"), ("à demain les amis", "fr"),
    ("c'est génial", "fr"), ("vielen Dank", "de"), ("bis morgen", "de"),
    ("wo bist du?", "de"), ("muito obrigado", "pt"), ("até amanhã", "pt"),
    ("grazie mille", "it"), ("ci vediamo domani", "it"), ("спасибо большое", "ru"),
    ("до завтра", "ru"), ("ありがとう", "ja"), ("また明日", "ja"), ("谢谢你", "zh"),
    ("明天见", "zh"), ("شكرا جزيلا", "ar"), ("أراك غدا", "ar"),
    ("dank je wel", "nl"), ("tot morgen jongens", "nl"), ("waar ben je?", "nl"),
    ("dziękuję bardzo", "pl"), ("do zobaczenia jutro", "pl"), ("gdzie jesteś?", "pl"),
    ("çok teşekkürler", "tr"), ("yarın görüşürüz", "tr"), ("neredesin?", "tr"),
    ("خیلی ممنون", "fa"), ("فردا می‌بینمت", "fa"), ("کجایی؟", "fa"),
    ("cảm ơn bạn nhiều", "vi"), ("hẹn gặp lại ngày mai", "vi"), ("bạn đang ở đâu?", "vi"),
    ("terima kasih banyak", "id"), ("sampai jumpa besok", "id"), ("kamu di mana?", "id"),
    ("děkuji moc", "cs"), ("uvidíme se zítra", "cs"), ("kde jsi teď?", "cs"),
    ("정말 고마워요", "ko"), ("내일 봐요", "ko"), ("어디야?", "ko"),
    ("дуже дякую", "uk"), ("до зустрічі завтра", "uk"), ("де ти зараз?", "uk"),
    ("köszönöm szépen", "hu"), ("holnap találkozunk", "hu"), ("hol vagy?", "hu"),
    ("tack så mycket", "sv"), ("vi ses imorgon", "sv"), ("var är du?", "sv"),
    ("ευχαριστώ πολύ", "el"), ("τα λέμε αύριο", "el"), ("πού είσαι;", "el"),
    ("mulțumesc mult", "ro"), ("ne vedem mâine", "ro"), ("unde ești?", "ro"),
    ("mange tak", "da"), ("vi ses i morgen", "da"), ("hvad laver du?", "da"),
    ("תודה רבה", "he"), ("נתראה מחר", "he"), ("איפה אתה?", "he"),
    ("kiitos paljon", "fi"), ("nähdään huomenna", "fi"), ("missä olet?", "fi"),
    ("ďakujem veľmi pekne", "sk"), ("uvidíme sa zajtra", "sk"), ("kde si teraz?", "sk"),
    ("ขอบคุณมาก", "th"), ("เจอกันพรุ่งนี้", "th"), ("อยู่ที่ไหน", "th"),
    ("много благодаря", "bg"), ("до утре", "bg"), ("къде си?", "bg"),
    ("tusen takk", "nb"), ("vi sees i morgen", "nb"), ("hva skjer?", "nb"),
    ("बहुत धन्यवाद", "hi"), ("कल मिलते हैं", "hi"), ("तुम कहाँ हो?", "hi"),
    # single short words: what the minimum-letters rule costs
    ("hello", "en"), ("thanks", "en"), ("hola", "es"), ("gracias", "es"), ("merci", "fr"),
    ("bonjour", "fr"), ("danke", "de"), ("tschüss", "de"), ("obrigado", "pt"), ("ciao", "it"),
    ("grazie", "it"), ("привет", "ru"), ("こんにちは", "ja"), ("你好", "zh"), ("مرحبا", "ar"),
    ("bedankt", "nl"), ("cześć", "pl"), ("merhaba", "tr"), ("سلام", "fa"), ("xin chào", "vi"),
    ("makasih", "id"), ("ahoj", "cs"), ("안녕하세요", "ko"), ("привіт", "uk"), ("szia", "hu"),
    ("hej", "sv"), ("γεια", "el"), ("salut", "ro"), ("tak", "da"), ("שלום", "he"),
    ("moi", "fi"), ("ďakujem", "sk"), ("สวัสดี", "th"), ("здрасти", "bg"), ("takk", "nb"),
    ("नमस्ते", "hi"),
)  # fmt: skip

#: Real-looking chat: laughter, slang, emoji, mentions and links around a clear message.
CHAT_MESSAGES: tuple[tuple[str, str], ...] = (
    ("lol that was the best game ever 😂 gg everyone", "en"),
    ("ngl this update is kinda mid but the new map slaps https://t.co/abc", "en"),
    ("jajaja no puedo más 😂 qué risa me das", "es"), ("oye @juan ya viste el vídeo? está buenísimo 🔥", "es"),
    ("mdr t'es sérieux là ?? 😂 j'y crois pas", "fr"), ("ptdr trop bien la partie d'hier soir 🎮", "fr"),
    ("alter was geht heute Abend ab? 🍻", "de"), ("haha voll geil, das müssen wir nochmal machen 😂", "de"),
    ("kkkkk mano que isso 😂 https://youtu.be/abc", "pt"), ("vou jogar agora, alguém quer entrar? 🎮", "pt"),
    ("ahahah dai ragazzi stasera si gioca? 🎮", "it"), ("madonna che partita, siete dei mostri 😂", "it"),
    ("ахаха ну ты даёшь 😂 го играть", "ru"), ("ребят кто сегодня в игре? <@123>", "ru"),
    ("草 まじでやばいww", "ja"), ("今日の配信めっちゃ楽しかった！😂", "ja"),
    ("哈哈哈 笑死我了 😂", "zh"), ("今晚一起打游戏吗？🎮", "zh"),
    ("هههه والله ضحكتني 😂", "ar"), ("مين جاي يلعب الليلة؟ 🎮", "ar"),
    ("haha echt niet normaal dit 😂", "nl"), ("wie doet er vanavond mee? 🎮", "nl"),
    ("xD serio? to było mega 🔥", "pl"), ("ktoś gra dzisiaj wieczorem? 🎮", "pl"),
    ("ahahah kanka çok iyiydi 😂", "tr"), ("bu akşam kim oynuyor? 🎮", "tr"),
    ("خخخ عالی بود داداش 😂", "fa"), ("امشب کی بازی می‌کنه؟ 🎮", "fa"),
    ("haha vui quá trời luôn 😂", "vi"), ("tối nay ai chơi game không? 🎮", "vi"),
    ("wkwk parah banget sih 😂", "id"), ("nanti malam ada yang mau main? 🎮", "id"),
    ("haha to bylo fakt dobrý 😂", "cs"), ("hraje dneska večer někdo? 🎮", "cs"),
    ("ㅋㅋㅋ 진짜 웃기다 😂", "ko"), ("오늘 밤에 게임 할 사람? 🎮", "ko"),
    ("ахах ну ти даєш 😂 підемо грати?", "uk"), ("хто сьогодні ввечері грає? 🎮", "uk"),
    ("haha ez nagyon durva volt 😂", "hu"), ("ki játszik ma este? 🎮", "hu"),
    ("haha det var sjukt roligt 😂", "sv"), ("någon som vill spela ikväll? 🎮", "sv"),
    ("χαχα τέλειο ήταν ρε 😂", "el"), ("ποιος παίζει απόψε; 🎮", "el"),
    ("haha a fost super tare 😂", "ro"), ("cine joacă diseară? 🎮", "ro"),
    ("haha det var sindssygt sjovt 😂", "da"), ("er der nogen der vil spille i aften? 🎮", "da"),
    ("חחח זה היה מטורף 😂", "he"), ("מי משחק הערב? 🎮", "he"),
    ("hah tää oli tosi hyvä 😂", "fi"), ("pelaako kukaan tänään illalla? 🎮", "fi"),
    ("haha to bolo fakt úžasné 😂", "sk"), ("hrá dnes večer niekto? 🎮", "sk"),
    ("555 ตลกมากเลย 😂", "th"), ("คืนนี้ใครเล่นเกมบ้าง 🎮", "th"),
    ("хаха беше супер яко 😂", "bg"), ("кой ще играе довечера? 🎮", "bg"),
    ("haha det var helt rått 😂", "nb"), ("er det noen som vil spille i kveld? 🎮", "nb"),
    ("हाहा बहुत मज़ा आया 😂", "hi"), ("आज रात कौन खेल रहा है? 🎮", "hi"),
)  # fmt: skip
