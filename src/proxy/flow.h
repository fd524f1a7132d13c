/*
 * Flow control, defined once for every direction: a side of a connection
 * that holds more than LV_FLOW_HIGH of unwritten data (measured in memory:
 * lv_sock_queued, or the buffer memory a body queue holds) stops whatever
 * feeds it from being read, until it is down to LV_FLOW_LOW. Request
 * bodies toward a backend, responses toward a client and tunnels in both
 * directions all live by these two numbers, so that a slow peer costs at
 * most LV_FLOW_HIGH plus one read buffer per direction.
 */
#ifndef LV_PROXY_FLOW_H
#define LV_PROXY_FLOW_H

#define LV_FLOW_HIGH (256 * 1024)
#define LV_FLOW_LOW (64 * 1024)

#endif
