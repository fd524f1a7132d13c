/* Reason phrases of status codes. */
#ifndef LV_HTTP_REASON_H
#define LV_HTTP_REASON_H

/* "Bad Gateway" for 502; "Unknown" for codes levee does not know. */
const char *lv_status_reason(unsigned status);

#endif
