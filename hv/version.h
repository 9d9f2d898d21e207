#ifndef HV_VERSION_H
#define HV_VERSION_H
#define HV_VERSION "0.1.0"
#endif
