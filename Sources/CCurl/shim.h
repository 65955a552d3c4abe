#ifndef CHANGERELAY_CCURL_SHIM_H
#define CHANGERELAY_CCURL_SHIM_H

#include <curl/curl.h>

/*
 * curl_easy_setopt, curl_multi_setopt and curl_easy_getinfo are variadic, so Swift
 * cannot call them. These typed wrappers pass exactly one argument of the type the
 * option expects (long, curl_off_t, char *, void *, struct curl_slist *, callback).
 * Using the wrong wrapper for an option is a bug the C compiler cannot catch: the
 * option names in the Swift callers document the type they expect.
 */

static inline CURLcode cr_global_init(void) {
    return curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- easy options ---- */

static inline CURLcode cr_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode cr_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

/* libcurl copies strings passed with setopt (except CURLOPT_POSTFIELDS). */
static inline CURLcode cr_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode cr_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

/* libcurl does NOT copy lists: the list must outlive the transfer. */
static inline CURLcode cr_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode cr_easy_setopt_writefunction(CURL *handle, curl_write_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
}

static inline CURLcode cr_easy_setopt_headerfunction(CURL *handle, curl_write_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
}

static inline CURLcode cr_easy_setopt_prereqfunction(CURL *handle, curl_prereq_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_PREREQFUNCTION, callback);
}

/* ---- easy info ---- */

static inline CURLcode cr_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode cr_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

/* The string belongs to the handle: copy it before the handle is reset or reused. */
static inline CURLcode cr_easy_getinfo_string(CURL *handle, CURLINFO info, const char **value) {
    char *result = NULL;
    CURLcode code = curl_easy_getinfo(handle, info, &result);
    *value = result;
    return code;
}

/* ---- multi options ---- */

static inline CURLMcode cr_multi_setopt_long(CURLM *handle, CURLMoption option, long value) {
    return curl_multi_setopt(handle, option, value);
}

/* ---- CURLMsg (its result lives in an anonymous union) ---- */

static inline int cr_msg_is_done(const CURLMsg *message) {
    return message->msg == CURLMSG_DONE;
}

static inline CURL *cr_msg_easy_handle(const CURLMsg *message) {
    return message->easy_handle;
}

static inline CURLcode cr_msg_result(const CURLMsg *message) {
    return message->data.result;
}

#endif
