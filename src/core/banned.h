/* banned.h - functions that are easy to misuse. Every .c file of src/
 * includes it as its LAST include (after the system headers, whose own
 * prototypes must not be rewritten); scripts/check-style.sh, run by ctest,
 * checks that. Use snprintf, myna_buf, strtol/strtoll with checks,
 * gmtime_r/localtime_r instead. */
#ifndef MYNA_CORE_BANNED_H
#define MYNA_CORE_BANNED_H

#define MYNA_BANNED(func) sorry_##func##_is_banned_in_myna

#undef sprintf
#define sprintf(...) MYNA_BANNED(sprintf)
#undef strcpy
#define strcpy(...) MYNA_BANNED(strcpy)
#undef strcat
#define strcat(...) MYNA_BANNED(strcat)
#undef strtok
#define strtok(...) MYNA_BANNED(strtok)
#undef atoi
#define atoi(...) MYNA_BANNED(atoi)
#undef gmtime
#define gmtime(...) MYNA_BANNED(gmtime)
#undef localtime
#define localtime(...) MYNA_BANNED(localtime)

#endif
